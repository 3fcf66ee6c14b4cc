"""PPO with a learned critic: the rollout scorer (values, GAE) and the jitted update.

Per RL step (``rl.algorithm = 'ppo'``):

    batch = make_ppo_batch(completions, scores_R, mesh)         # rows + sequence rewards
    batch, metrics = scorer(state, batch)   # old/ref logprobs, V_old, token rewards, GAE
    for _ in range(mu):
        state, metrics = step(state, batch)  # clipped surrogate + value_coef * value loss

With ``rl.off_policy``, the importance weights of ``off_policy.py`` multiply the policy
loss as in GRPO (the scorer's forward gives the token log-ratios).
The policy loss is the registered clipped surrogate of ``rl.loss_type`` (``losses.py``)
with per-token advantages ``A[i, t]`` from GAE (``gae.py``), whitened over the batch when
``rl.ppo.whiten_advantages``; the value loss is ``value.py``'s clipped loss, a token mean
over the batch, times ``rl.ppo.value_coef``. The KL to the reference is either in the
reward (``rl.ppo.kl_penalty = 'reward'``: ``r_t -= beta * kl_t`` on the sampling policy's
log-probabilities, estimator ``rl.kl_estimator``; classic RLHF PPO) or in the loss
(``'loss'``: exactly as GRPO adds it).

The critic (``TrainState.critic``) is ``{"value_head": {kernel [D], bias []}}`` reading the
policy's own final hidden states (``rl.ppo.critic = 'shared'``: the value loss also trains
the policy's LoRA / params, one forward serves both), or that plus ``"lora"``, a second
LoRA tree on the frozen base (``'separate'``: a critic with its own backbone; one more
forward and backward per step). Its optimizer is ``optim.*`` with
``rl.ppo.critic_learning_rate``. For the first ``rl.ppo.critic_warmup_steps`` RL steps only
the critic updates (the policy and its optimizer state are left as they were).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from rlvr_jax.parallel import batch_sharding, param_shardings, replicated, shard_batch
from rlvr_jax.policy import Policy
from rlvr_jax.rl.gae import generalized_advantages, last_token_rewards, whiten
from rlvr_jax.rl.kl import get_kl_estimator
from rlvr_jax.rl.losses import LossConfig, finalize_metrics, loss_normalizer, policy_loss
from rlvr_jax.rl.microbatch import accumulate_gradients
from rlvr_jax.rl.off_policy import importance_weights
from rlvr_jax.rl.policy_logprobs import completion_hidden, logprobs_from_hidden
from rlvr_jax.rl.train_state import TrainState, apply_if, train_state_shardings
from rlvr_jax.rl.train_step import (
    INPUT_KEYS,
    IS_LOG_RATIOS,
    SAMPLER_LOGPROBS,
    TrainStepConfig,
    correction_metrics,
    jit_update,
    logprobs_and_log_ratios,
    scorer_inputs,
)
from rlvr_jax.rl.value import clipped_value_loss, init_value_head, value_head
from rlvr_jax.sampling import Completions

PyTree = Any
Batch = dict[str, jax.Array]
CRITICS = ("shared", "separate")
KL_PENALTIES = ("reward", "loss")


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO's critic and credit assignment (`config.rl.ppo`)."""

    critic: str  # 'shared' (value head on the policy's backbone) | 'separate' (own LoRA)
    gamma: float  # discount over completion tokens
    gae_lambda: float  # GAE lambda: 1 = Monte Carlo returns, 0 = one-step TD
    value_coef: float  # weight of the value loss in the total loss
    value_clip: float | None  # clip of V - V_old in the value loss; None = unclipped
    critic_learning_rate: float  # the critic optimizer's peak learning rate
    critic_warmup_steps: int  # first RL steps that train only the critic
    whiten_advantages: bool  # normalize A over the batch's completion tokens
    kl_penalty: str  # 'reward' (per token, classic RLHF) | 'loss' (as GRPO)

    def __post_init__(self):
        if self.critic not in CRITICS:
            raise ValueError(f"rl.ppo.critic: unknown {self.critic!r}; choose one of {CRITICS}")
        if self.kl_penalty not in KL_PENALTIES:
            raise ValueError(
                f"rl.ppo.kl_penalty: unknown {self.kl_penalty!r}; choose one of {KL_PENALTIES}"
            )
        for key in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"rl.ppo.{key} must be in [0, 1], got {getattr(self, key)}")
        if not self.value_coef > 0.0:
            raise ValueError(f"rl.ppo.value_coef must be > 0, got {self.value_coef}")
        if self.value_clip is not None and not self.value_clip > 0.0:
            raise ValueError(f"rl.ppo.value_clip must be None or > 0, got {self.value_clip}")
        if not self.critic_learning_rate > 0.0:
            raise ValueError(
                f"rl.ppo.critic_learning_rate must be > 0, got {self.critic_learning_rate}"
            )
        if self.critic_warmup_steps < 0:
            raise ValueError(
                f"rl.ppo.critic_warmup_steps must be >= 0, got {self.critic_warmup_steps}"
            )


def init_critic(policy: Policy, cfg: PPOConfig, rng: jax.Array) -> PyTree:
    """The critic at step 0: a zero value head (V = 0), plus a LoRA tree (b = 0: the base's
    own hidden states) when the critic has its own backbone. `rng`: ``CRITIC_INIT``'s key."""
    critic = {"value_head": init_value_head(policy.model.cfg.hidden_size)}
    if cfg.critic == "separate":
        critic["lora"] = policy.init_lora(rng)
    return critic


def make_ppo_batch(completions: Completions, scores_R: Any, mesh: Mesh) -> Batch:
    """The rows and their sequence rewards (``rewards`` [R]) on ``mesh``."""
    host = {
        "prompt_ids": np.asarray(completions.prompt_ids, np.int32),
        "prompt_mask": np.asarray(completions.prompt_mask, np.int32),
        "completion_ids": np.asarray(completions.ids, np.int32),
        "completion_mask": np.asarray(completions.mask, np.int32),
        SAMPLER_LOGPROBS: np.asarray(completions.sampling_logprobs, np.float32),
        "rewards": np.asarray(scores_R, np.float32),
    }
    return shard_batch(host, mesh)


@dataclasses.dataclass(frozen=True)
class _Forward:
    """The policy's and the critic's teacher-forced forwards on one (micro-)batch."""

    policy: Policy
    cfg: PPOConfig
    rows_per_prompt: int

    def hidden(self, variables: dict[str, PyTree], mb: Batch) -> jax.Array:
        inputs = [mb[k] for k in INPUT_KEYS]
        return completion_hidden(
            self.policy.model, variables, *inputs, rows_per_prompt=self.rows_per_prompt
        )

    def logprobs(self, variables: dict[str, PyTree], hidden: jax.Array, mb: Batch):
        return logprobs_from_hidden(
            self.policy.model, variables, hidden, mb["completion_ids"], mb["completion_mask"]
        )

    def values(
        self, base: PyTree | None, critic: PyTree, policy_hidden: jax.Array, mb: Batch
    ) -> jax.Array:
        if self.cfg.critic == "shared":
            hidden = policy_hidden
        else:
            hidden = self.hidden({"params": base, "lora": critic["lora"]}, mb)
        return jnp.where(mb["completion_mask"] > 0, value_head(critic["value_head"], hidden), 0.0)


def _masked_mean(x_RL: jax.Array, mask_RL: jax.Array) -> jax.Array:
    m_RL = mask_RL.astype(jnp.float32)
    return jnp.sum(x_RL * m_RL) / jnp.maximum(jnp.sum(m_RL), 1.0)


def score_ppo_rollout(
    frozen: PyTree | None,
    critic_base: PyTree | None,
    trainable: PyTree,
    critic: PyTree,
    reference: PyTree | None,
    batch: Batch,
    *,
    policy: Policy,
    cfg: PPOConfig,
    beta: float,
    kl_estimator: str,
    step_cfg: TrainStepConfig,
) -> tuple[Batch, dict[str, jax.Array]]:
    """The batch plus ``old_values``, ``advantages`` and ``returns`` [R, L] (and
    ``old_logprobs`` for mu > 1, ``ref_logprobs`` for the KL in the loss); rollout metrics."""
    layout = step_cfg.layout(batch["completion_mask"].shape[0], policy.mesh.size)
    fwd = _Forward(policy, cfg, layout.rows_per_prompt)
    kl_in_reward = beta > 0 and cfg.kl_penalty == "reward"
    needs_old = step_cfg.num_iterations > 1 or kl_in_reward

    correction = step_cfg.off_policy

    def score(mb: Batch) -> Batch:
        variables = policy.variables(frozen, trainable)
        hidden = fwd.hidden(variables, mb)
        out = {"old_values": fwd.values(critic_base, critic, hidden, mb)}
        if correction is not None:  # one LM head pass gives both
            out["old_logprobs"], out[IS_LOG_RATIOS] = logprobs_and_log_ratios(
                policy, variables, hidden, mb, correction
            )
        elif needs_old:
            out["old_logprobs"] = fwd.logprobs(variables, hidden, mb)[0]
        if reference is not None:
            ref_vars = policy.reference_variables(reference)
            out["ref_logprobs"] = fwd.logprobs(ref_vars, fwd.hidden(ref_vars, mb), mb)[0]
        return out

    keys = scorer_inputs(step_cfg)
    scored = layout.map(score, {k: batch[k] for k in keys})
    mask_RL = batch["completion_mask"]
    rewards_RL = last_token_rewards(batch["rewards"], mask_RL)
    metrics = {}
    if kl_in_reward:
        kl_RL = get_kl_estimator(kl_estimator)(scored["old_logprobs"], scored["ref_logprobs"])
        kl_RL = jnp.where(mask_RL > 0, kl_RL, 0.0)
        rewards_RL = rewards_RL - beta * kl_RL
        metrics["kl/mean"] = _masked_mean(kl_RL, mask_RL)
    values_RL = scored["old_values"]
    adv_RL, returns_RL = generalized_advantages(
        rewards_RL, values_RL, mask_RL, cfg.gamma, cfg.gae_lambda
    )
    residual_var = _masked_mean(jnp.square(returns_RL - values_RL), mask_RL)
    returns_mean = _masked_mean(returns_RL, mask_RL)
    returns_var = _masked_mean(jnp.square(returns_RL - returns_mean), mask_RL)
    metrics |= {
        "advantage/mean": _masked_mean(adv_RL, mask_RL),
        "advantage/std": jnp.sqrt(_masked_mean(jnp.square(adv_RL), mask_RL)),
        "value/old_mean": _masked_mean(values_RL, mask_RL),
        "value/returns_mean": returns_mean,
        # 1 - Var(G - V) / Var(G): 1 = the critic predicts the returns, <= 0 = no better than
        # their mean (residual taken about 0, the convention of the PPO baselines).
        "value/explained_variance": 1.0 - residual_var / jnp.maximum(returns_var, 1e-8),
        "reward/token_mean": _masked_mean(rewards_RL, mask_RL),
    }
    if cfg.whiten_advantages:
        adv_RL = whiten(adv_RL, mask_RL)
    out = {**batch, "advantages": adv_RL, "returns": returns_RL, "old_values": values_RL}
    if step_cfg.num_iterations > 1:
        out["old_logprobs"] = scored["old_logprobs"]
    if correction is not None:
        out[IS_LOG_RATIOS] = scored[IS_LOG_RATIOS]
    if reference is not None and not kl_in_reward:
        out["ref_logprobs"] = scored["ref_logprobs"]
    return out, metrics


def ppo_loss_and_grads(
    frozen: PyTree | None,
    critic_base: PyTree | None,
    trainable: PyTree,
    critic: PyTree,
    batch: Batch,
    *,
    policy: Policy,
    cfg: PPOConfig,
    loss_cfg: LossConfig,
    step_cfg: TrainStepConfig,
) -> tuple[jax.Array, tuple[PyTree, PyTree], dict[str, jax.Array]]:
    """``(loss, (d/d trainable, d/d critic), metric_sums)`` summed over micro-batches;
    ``loss = policy surrogate (+ beta KL) + value_coef * sum m l_value / N_tokens``."""
    mask = batch["completion_mask"]
    layout = step_cfg.layout(mask.shape[0], policy.mesh.size)
    fwd = _Forward(policy, cfg, layout.rows_per_prompt)
    normalizer = loss_normalizer(mask, loss_cfg)
    num_tokens = jnp.maximum(jnp.sum(mask.astype(jnp.float32)), 1.0)
    use_old = step_cfg.num_iterations > 1
    use_ref = "ref_logprobs" in batch
    keys = [*INPUT_KEYS, "advantages", "returns", "old_values"]
    keys += ["old_logprobs"] * use_old + ["ref_logprobs"] * use_ref

    def loss_fn(params: tuple[PyTree, PyTree], mb: Batch):
        trainable, critic = params
        variables = policy.variables(frozen, trainable)
        hidden = fwd.hidden(variables, mb)
        logp_RL, entropy_RL = fwd.logprobs(variables, hidden, mb)
        loss, sums = policy_loss(
            logp_RL,
            mb["old_logprobs"] if use_old else None,
            mb["ref_logprobs"] if use_ref else None,
            mb["advantages"],
            mb["completion_mask"],
            normalizer,
            loss_cfg,
            entropy_RL,
            mb.get("is_weights"),
        )
        values_RL = fwd.values(critic_base, critic, hidden, mb)
        value_loss_RL, clipped_RL = clipped_value_loss(
            values_RL, mb["old_values"], mb["returns"], cfg.value_clip
        )
        m_RL = mb["completion_mask"].astype(jnp.float32)
        value_loss = jnp.sum(m_RL * value_loss_RL)
        sums |= {
            "value/loss": jax.lax.stop_gradient(value_loss),
            "value/clip_frac": jnp.sum(m_RL * clipped_RL),
            "value/mean": jnp.sum(m_RL * jax.lax.stop_gradient(values_RL)),
        }
        return loss + cfg.value_coef * value_loss / num_tokens, sums

    rows = {k: batch[k] for k in keys}
    if step_cfg.off_policy is not None:
        rows["is_weights"], _ = importance_weights(
            batch[IS_LOG_RATIOS], mask, step_cfg.off_policy.cfg
        )
    return accumulate_gradients(
        loss_fn, (trainable, critic), rows, layout.num_microbatches, layout.run
    )


def ppo_train_step(
    frozen: PyTree | None,
    critic_base: PyTree | None,
    state: TrainState,
    batch: Batch,
    *,
    policy: Policy,
    cfg: PPOConfig,
    loss_cfg: LossConfig,
    step_cfg: TrainStepConfig,
    optimizer: optax.GradientTransformation,
    critic_optimizer: optax.GradientTransformation,
    lr_schedule: optax.Schedule,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One update of the critic and (after the warm-up) the policy. Metrics: GRPO's
    (``train_step.train_step``) plus ``value/{loss,clip_frac,mean}``, ``critic/grad_norm``
    and ``ppo/policy_updated`` (0 during the critic warm-up)."""
    loss, (grads, critic_grads), sums = ppo_loss_and_grads(
        frozen,
        critic_base,
        state.trainable,
        state.critic,
        batch,
        policy=policy,
        cfg=cfg,
        loss_cfg=loss_cfg,
        step_cfg=step_cfg,
    )
    updates, opt_state = optimizer.update(grads, state.opt_state, state.trainable)
    update_policy = state.step >= cfg.critic_warmup_steps * step_cfg.num_iterations
    trainable = apply_if(
        update_policy, optax.apply_updates(state.trainable, updates), state.trainable
    )
    opt_state = apply_if(update_policy, opt_state, state.opt_state)
    critic_updates, critic_opt_state = critic_optimizer.update(
        critic_grads, state.critic_opt_state, state.critic
    )
    metrics = {
        "loss": loss,
        **finalize_metrics(sums),
        **correction_metrics(batch, step_cfg),
        "grad/norm": optax.tree.norm(grads),
        "critic/grad_norm": optax.tree.norm(critic_grads),
        "optim/lr": jnp.asarray(lr_schedule(state.step), jnp.float32),
        "ppo/policy_updated": update_policy.astype(jnp.float32),
    }
    new_state = state.replace(
        step=state.step + 1,
        trainable=trainable,
        opt_state=opt_state,
        critic=optax.apply_updates(state.critic, critic_updates),
        critic_opt_state=critic_opt_state,
    )
    return new_state, metrics


def _critic_base(policy: Policy, cfg: PPOConfig) -> PyTree | None:
    return policy.base if cfg.critic == "separate" else None


def make_ppo_scorer(
    policy: Policy,
    cfg: PPOConfig,
    beta: float,
    kl_estimator: str,
    step_cfg: TrainStepConfig,
    state: TrainState,
) -> Callable[[TrainState, Batch], tuple[Batch, dict[str, jax.Array]]]:
    """``score(state, batch) -> (batch, metrics)``, jitted; call once per rollout."""
    if (beta > 0) != (policy.reference is not None):
        raise ValueError(
            f"rl.beta = {beta}: the policy was built with has_reference={policy.has_reference}"
        )
    mesh = policy.mesh
    state_sh = train_state_shardings(state, mesh)
    critic_base = _critic_base(policy, cfg)
    fn = functools.partial(
        score_ppo_rollout,
        policy=policy,
        cfg=cfg,
        beta=beta,
        kl_estimator=kl_estimator,
        step_cfg=step_cfg,
    )
    jitted = jax.jit(
        fn,
        in_shardings=(
            param_shardings(policy.frozen, mesh),
            param_shardings(critic_base, mesh),
            state_sh.trainable,
            state_sh.critic,
            param_shardings(policy.reference, mesh),
            batch_sharding(mesh),
        ),
        out_shardings=(batch_sharding(mesh), replicated(mesh)),
    )

    def scorer(state: TrainState, batch: Batch) -> tuple[Batch, dict[str, jax.Array]]:
        return jitted(
            policy.frozen, critic_base, state.trainable, state.critic, policy.reference, batch
        )

    return scorer


def make_ppo_train_step(
    policy: Policy,
    cfg: PPOConfig,
    loss_cfg: LossConfig,
    step_cfg: TrainStepConfig,
    optimizer: optax.GradientTransformation,
    critic_optimizer: optax.GradientTransformation,
    lr_schedule: optax.Schedule,
    state: TrainState,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """``step(state, batch) -> (state, metrics)``, jitted once, state donated."""
    fn = functools.partial(
        ppo_train_step,
        policy=policy.for_training(step_cfg.remat),
        cfg=cfg,
        loss_cfg=loss_cfg,
        step_cfg=step_cfg,
        optimizer=optimizer,
        critic_optimizer=critic_optimizer,
        lr_schedule=lr_schedule,
    )
    return jit_update(fn, state, policy.mesh, policy.frozen, _critic_base(policy, cfg))
