"""The GRPO-family train step: one pure, jitted, data-parallel `(state, batch) -> (state, metrics)`.

Batch (a dict; every leaf has the leading row axis R = prompts * G, sharded on the mesh's
data axes; letters as in ``policy_logprobs.py``):

    prompt_ids [R, P], prompt_mask [R, P]            left-padded prompts
    completion_ids [R, L], completion_mask [R, L]    sampled tokens, 1 up to the stop token
    advantages [R]                                   from ``rollout.compute_advantages``
    old_logprobs [R, L]    needed when rl.num_iterations (mu) > 1: logprobs of the policy that
                           sampled, fixed for the mu updates on this batch
    ref_logprobs [R, L]    needed when rl.beta > 0: logprobs of the frozen reference
    sampler_logprobs [R, L]  the sampler's (Completions.sampling_logprobs); with
                           rl.off_policy the scorer turns them into is_log_ratios [R, L]

Both extra fields come from :func:`make_rollout_scorer`, called **once per rollout**, before
the mu train steps: the reference does not change across them, so computing it inside the
step would repeat the same forward mu times. With mu = 1 the step ignores ``old_logprobs``
and uses ``stop_gradient(logp)`` instead (ratio exactly 1, the update is REINFORCE with the
group baseline); with beta = 0 the reference forward is skipped altogether. The old
logprobs are recomputed by the same teacher-forced forward as the step's rather than taken
from the sampler (``Completions.logprobs``): the KV-cache decode differs from it by rounding
(visibly in bfloat16), which would put the first of the mu ratios off 1.

One RL step, as the orchestrator runs it (the first three lines once per run):

    state = init_train_state(policy.init_trainable(key), optimizer, rng, policy.mesh)
    step = make_train_step(policy, loss_cfg, step_cfg, optimizer, schedule, state)
    scorer = make_rollout_scorer(policy, loss_cfg, step_cfg, state)
    batch, rollout_metrics = rollout.make_train_batch(completions, rewards, mesh, G, adv, eps)
    batch = scorer(state, batch)
    for _ in range(mu):
        state, metrics = step(state, batch)

Which parameters train and what the reference is belongs to the ``Policy``
(``rlvr_jax/policy.py``): the step receives its frozen tree (``policy.frozen``) and the
scorer its reference (``policy.reference``) as jit inputs, and builds Flax variables only
through ``policy.variables`` / ``Policy.reference_variables``; nothing here branches on
LoRA vs full fine-tuning.

Loss and gradient accumulation (see ``aggregation.py``, ``microbatch.py``): the normalizer Z
of the aggregation is computed on the full batch, *before* the split into M strided
micro-batches, and each micro-batch contributes ``sum_{i in m, t} w[i, t] l[i, t] / Z``, so
the summed loss, gradients and metrics do not depend on M (nor on the device count). The
split keeps a prompt's G rows in one micro-batch where the prompts divide evenly
(``TrainStepConfig.layout``), so each prompt's forward runs once per step, not once per
micro-batch.

Sharding: the state by ``parallel.PARAM_SHARDING_RULES`` (see ``train_state.py``), the
frozen tree and the reference by the same rules, the batch on ``('data', 'fsdp')``, metrics
replicated. The state is donated: the caller must not reuse the ``state`` it passed in.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from rlvr_jax.models.decoder import check_remat
from rlvr_jax.parallel import batch_sharding, param_shardings, replicated
from rlvr_jax.policy import Policy
from rlvr_jax.rl.logprobs import token_logprobs_and_entropy
from rlvr_jax.rl.losses import LossConfig, finalize_metrics, loss_normalizer, policy_loss
from rlvr_jax.rl.microbatch import (
    MicrobatchLayout,
    accumulate_gradients,
    microbatch_layout,
)
from rlvr_jax.rl.off_policy import (
    OffPolicyConfig,
    importance_weights,
    off_policy_metrics,
    sampling_distribution_logprobs,
    token_log_ratios,
)
from rlvr_jax.rl.policy_logprobs import completion_hidden, completion_logprobs, map_logit_chunks
from rlvr_jax.rl.train_state import TrainState, train_state_shardings
from rlvr_jax.sampling import SamplingConfig

PyTree = Any
Batch = dict[str, jax.Array]
INPUT_KEYS = ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask")
SAMPLER_LOGPROBS = "sampler_logprobs"  # [R, L] Completions.sampling_logprobs
IS_LOG_RATIOS = "is_log_ratios"  # [R, L] off_policy.token_log_ratios, from the scorer


@dataclasses.dataclass(frozen=True)
class OffPolicyCorrection:
    """Importance weights (``off_policy.py``) against the distribution ``sampling`` draws
    from: the scorer computes the token log-ratios once per rollout, the step the weights."""

    cfg: OffPolicyConfig
    sampling: SamplingConfig

    def __post_init__(self):
        if not self.cfg.enabled:
            raise ValueError("OffPolicyCorrection needs rl.off_policy.correction != 'none'")
        if self.sampling.temperature <= 0:
            raise ValueError(
                "rl.off_policy.correction: greedy sampling (sampling.temperature = 0) has no "
                "sampling distribution to correct for"
            )


@dataclasses.dataclass(frozen=True)
class TrainStepConfig:
    """How the step trains; every field is a config key under ``rl`` (G: ``sampling``)."""

    num_microbatches: int  # M: gradient accumulation steps per update (R divisible by M)
    num_iterations: int  # mu: updates per rollout batch; > 1 uses the batch's old_logprobs
    # G: rows p*G .. p*G+G-1 share one prompt (the sampler's layout), so the forward runs each
    # prompt once for its rows (policy_logprobs.py); 1 assumes nothing about rows.
    group_size: int
    # rl.off_policy with the sampling config it corrects for; None = no correction.
    off_policy: OffPolicyCorrection | None = None
    remat: str = "none"  # rl.remat: models.decoder.REMAT_POLICIES

    def __post_init__(self):
        if self.num_microbatches < 1:
            raise ValueError(f"rl.num_microbatches must be >= 1, got {self.num_microbatches}")
        if self.num_iterations < 1:
            raise ValueError(f"rl.num_iterations must be >= 1, got {self.num_iterations}")
        if self.group_size < 1:
            raise ValueError(f"sampling.num_samples must be >= 1, got {self.group_size}")
        check_remat(self.remat)

    def layout(self, rows: int, shards: int) -> MicrobatchLayout:
        """The micro-batch split of `rows` rows on `shards` devices (`microbatch_layout`):
        whole prompts per micro-batch where they divide evenly, so that each prompt is run
        once per step; else strided rows (G / M of a prompt's rows per micro-batch)."""
        return microbatch_layout(rows, self.group_size, self.num_microbatches, shards)


def _check_batch(batch: Batch, step_cfg: TrainStepConfig, loss_cfg: LossConfig) -> None:
    missing = [k for k in (*INPUT_KEYS, "advantages") if k not in batch]
    if step_cfg.num_iterations > 1 and "old_logprobs" not in batch:
        missing.append("old_logprobs (rl.num_iterations > 1; see make_rollout_scorer)")
    if loss_cfg.beta > 0 and "ref_logprobs" not in batch:
        missing.append("ref_logprobs (rl.beta > 0; see make_rollout_scorer)")
    if step_cfg.off_policy is not None and IS_LOG_RATIOS not in batch:
        missing.append(f"{IS_LOG_RATIOS} (rl.off_policy; see make_rollout_scorer)")
    if missing:
        raise ValueError(f"train batch is missing {missing}; it has {sorted(batch)}")


def loss_and_grads(
    frozen: PyTree | None,
    trainable: PyTree,
    batch: Batch,
    *,
    policy: Policy,
    loss_cfg: LossConfig,
    step_cfg: TrainStepConfig,
) -> tuple[jax.Array, PyTree, dict[str, jax.Array]]:
    """``(loss, d loss / d trainable, metric_sums)`` summed over the M micro-batches.

    ``loss = sum_{i,t} w[i,t] l[i,t] / Z`` with Z from the full batch (``loss_normalizer``);
    ``l`` is the clipped surrogate (+ beta * KL) of ``loss_cfg.loss_type``. The batch's
    ``ref_logprobs``, when present, also give the ``kl/mean`` metric at beta = 0.
    """
    _check_batch(batch, step_cfg, loss_cfg)
    normalizer = loss_normalizer(batch["completion_mask"], loss_cfg)
    use_old = step_cfg.num_iterations > 1
    use_ref = "ref_logprobs" in batch
    keys = [*INPUT_KEYS, "advantages"] + ["old_logprobs"] * use_old + ["ref_logprobs"] * use_ref
    rows = {k: batch[k] for k in keys}  # only these are split into micro-batches
    layout = step_cfg.layout(batch["completion_mask"].shape[0], policy.mesh.size)
    if step_cfg.off_policy is not None:
        rows["is_weights"], _ = importance_weights(
            batch[IS_LOG_RATIOS], batch["completion_mask"], step_cfg.off_policy.cfg
        )

    def loss_fn(trainable: PyTree, mb: Batch) -> tuple[jax.Array, dict[str, jax.Array]]:
        logp_RL, entropy_RL = completion_logprobs(
            policy.model,
            policy.variables(frozen, trainable),
            mb["prompt_ids"],
            mb["prompt_mask"],
            mb["completion_ids"],
            mb["completion_mask"],
            rows_per_prompt=layout.rows_per_prompt,
        )
        return policy_loss(
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

    return accumulate_gradients(loss_fn, trainable, rows, layout.num_microbatches, layout.run)


def correction_metrics(batch: Batch, step_cfg: TrainStepConfig) -> dict[str, jax.Array]:
    """``off_policy/*`` of the batch (empty without a correction)."""
    if step_cfg.off_policy is None:
        return {}
    cfg = step_cfg.off_policy.cfg
    return off_policy_metrics(batch[IS_LOG_RATIOS], batch["completion_mask"], cfg)


def train_step(
    frozen: PyTree | None,
    state: TrainState,
    batch: Batch,
    *,
    policy: Policy,
    loss_cfg: LossConfig,
    step_cfg: TrainStepConfig,
    optimizer: optax.GradientTransformation,
    lr_schedule: optax.Schedule,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimizer update. Metrics (scalars): ``loss``, the token means of
    :func:`finalize_metrics` (``policy/clip_frac_low``, ``policy/clip_frac_high``,
    ``policy/dual_clip_frac``, ``policy/ratio_mean``, ``policy/entropy``, ``kl/mean`` when
    ``ref_logprobs`` are given), ``grad/norm`` (global L2 norm before clipping) and
    ``optim/lr`` (the learning rate of this update).
    """
    loss, grads, sums = loss_and_grads(
        frozen, state.trainable, batch, policy=policy, loss_cfg=loss_cfg, step_cfg=step_cfg
    )
    updates, opt_state = optimizer.update(grads, state.opt_state, state.trainable)
    trainable = optax.apply_updates(state.trainable, updates)
    metrics = {
        "loss": loss,
        **finalize_metrics(sums),
        **correction_metrics(batch, step_cfg),
        "grad/norm": optax.tree.norm(grads),
        "optim/lr": jnp.asarray(lr_schedule(state.step), jnp.float32),
    }
    new_state = state.replace(step=state.step + 1, trainable=trainable, opt_state=opt_state)
    return new_state, metrics


def make_train_step(
    policy: Policy,
    loss_cfg: LossConfig,
    step_cfg: TrainStepConfig,
    optimizer: optax.GradientTransformation,
    lr_schedule: optax.Schedule,
    state: TrainState,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """``step(state, batch) -> (state, metrics)``, jitted once over ``policy.mesh``, state
    donated.

    ``state`` (arrays or ShapeDtypeStructs) gives the state's shardings; the policy's frozen
    tree is a jit input with the parameter shardings. ``lr_schedule`` is
    ``optim.make_schedule(cfg)`` of the same optimizer.
    """
    fn = functools.partial(
        train_step,
        policy=policy.for_training(step_cfg.remat),
        loss_cfg=loss_cfg,
        step_cfg=step_cfg,
        optimizer=optimizer,
        lr_schedule=lr_schedule,
    )
    return jit_update(fn, state, policy.mesh, policy.frozen)


def jit_update(
    fn: Callable[..., tuple[TrainState, dict[str, jax.Array]]],
    state: TrainState,
    mesh: Mesh,
    *fixed: PyTree | None,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """``fn(*fixed, state, batch) -> (state, metrics)`` jitted once over ``mesh`` as
    ``step(state, batch)``: the ``fixed`` trees (the frozen base, a critic's base) are jit
    inputs with the parameter shardings, the state is donated, the metrics replicated.
    Every algorithm's update (GRPO here, ``ppo.py``, ``dpo_step.py``) is built by it."""
    state_sh = train_state_shardings(state, mesh)
    jitted = jax.jit(
        fn,
        in_shardings=(
            *(param_shardings(tree, mesh) for tree in fixed),
            state_sh,
            batch_sharding(mesh),
        ),
        out_shardings=(state_sh, replicated(mesh)),
        donate_argnames=("state",),
    )
    return functools.partial(jitted, *fixed)


def scorer_inputs(step_cfg: TrainStepConfig) -> tuple[str, ...]:
    """Batch keys a rollout scorer reads: the rows, plus the sampler's log-probabilities
    when the off-policy correction compares them with the trainer's."""
    return (*INPUT_KEYS, SAMPLER_LOGPROBS) if step_cfg.off_policy is not None else INPUT_KEYS


def score_rollout(
    frozen: PyTree | None,
    trainable: PyTree,
    reference: PyTree | None,
    batch: Batch,
    *,
    policy: Policy,
    step_cfg: TrainStepConfig,
) -> Batch:
    """``old_logprobs`` (policy, mu > 1) and ``ref_logprobs`` (``reference`` given), [R, L].

    Forward only, over the same M micro-batches as the step (``lax.map``), so its peak
    memory stays below the step's.
    """
    needs_old = step_cfg.num_iterations > 1
    correction = step_cfg.off_policy
    keys = scorer_inputs(step_cfg)
    layout = step_cfg.layout(batch["completion_mask"].shape[0], policy.mesh.size)

    def logprobs(variables: dict[str, PyTree], mb: Batch) -> jax.Array:
        inputs = [mb[k] for k in INPUT_KEYS]
        return completion_logprobs(
            policy.model, variables, *inputs, rows_per_prompt=layout.rows_per_prompt
        )[0]

    def score(mb: Batch) -> Batch:
        out = {}
        variables = policy.variables(frozen, trainable)
        if correction is not None:  # one forward gives both
            out["old_logprobs"], out[IS_LOG_RATIOS] = rollout_policy_logprobs(
                policy, variables, mb, correction, layout.rows_per_prompt
            )
        elif needs_old:
            out["old_logprobs"] = logprobs(variables, mb)
        if reference is not None:
            out["ref_logprobs"] = logprobs(policy.reference_variables(reference), mb)
        return out

    scored = layout.map(score, {k: batch[k] for k in keys})
    if not needs_old:
        scored.pop("old_logprobs", None)
    return scored


def rollout_policy_logprobs(
    policy: Policy,
    variables: dict[str, PyTree],
    mb: Batch,
    correction: OffPolicyCorrection,
    rows_per_prompt: int,
) -> tuple[jax.Array, jax.Array]:
    """``(logp_RL, log_ratios_RL)`` of the policy that sampled: its temperature-1 logprobs
    and the token log-ratios of its sampling distribution to the sampler's."""
    inputs = [mb[k] for k in INPUT_KEYS]
    hidden = completion_hidden(policy.model, variables, *inputs, rows_per_prompt=rows_per_prompt)
    return logprobs_and_log_ratios(policy, variables, hidden, mb, correction)


def logprobs_and_log_ratios(
    policy: Policy,
    variables: dict[str, PyTree],
    hidden_RLD: jax.Array,
    mb: Batch,
    correction: OffPolicyCorrection,
) -> tuple[jax.Array, jax.Array]:
    """``rollout_policy_logprobs`` from the hidden states the caller already has (the LM
    head in chunks: no [R, L, V] logits)."""
    ids, mask = mb["completion_ids"], mb["completion_mask"]

    def per_token(logits, ids):
        logp = token_logprobs_and_entropy(logits, ids, 1.0)[0]
        return logp, sampling_distribution_logprobs(logits, ids, correction.sampling)

    logp, trainer = map_logit_chunks(policy.model, variables, hidden_RLD, ids, per_token)
    logp = jnp.where(mask > 0, logp, 0.0)
    return logp, token_log_ratios(trainer, mb[SAMPLER_LOGPROBS], mask)


def make_rollout_scorer(
    policy: Policy,
    loss_cfg: LossConfig,
    step_cfg: TrainStepConfig,
    state: TrainState,
) -> Callable[[TrainState, Batch], Batch]:
    """``score(state, batch) -> batch`` plus ``old_logprobs`` / ``ref_logprobs`` as needed.

    Call once per rollout, before the mu train steps (it reads ``state.trainable``, which
    the first step donates). The reference is ``policy.reference``: it must exist exactly
    when the loss has a KL term (beta > 0). With mu = 1 and beta = 0 it returns the batch
    unchanged and compiles nothing.
    """
    reference = policy.reference
    if (loss_cfg.beta > 0) != (reference is not None):
        raise ValueError(
            f"rl.beta = {loss_cfg.beta}: the policy was built with has_reference="
            f"{policy.has_reference}; build it with has_reference = (rl.beta > 0)"
        )
    if step_cfg.num_iterations == 1 and reference is None and step_cfg.off_policy is None:
        return lambda state, batch: batch
    mesh = policy.mesh
    fn = functools.partial(score_rollout, policy=policy, step_cfg=step_cfg)
    jitted = jax.jit(
        fn,
        in_shardings=(
            param_shardings(policy.frozen, mesh),
            train_state_shardings(state, mesh).trainable,
            param_shardings(reference, mesh),
            batch_sharding(mesh),
        ),
        out_shardings=batch_sharding(mesh),
    )

    keys = scorer_inputs(step_cfg)

    def scorer(state: TrainState, batch: Batch) -> Batch:
        inputs = {k: batch[k] for k in keys}
        return {**batch, **jitted(policy.frozen, state.trainable, reference, inputs)}

    return scorer
