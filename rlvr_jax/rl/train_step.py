"""The GRPO-family train step: one pure, jitted, data-parallel `(state, batch) -> (state, metrics)`.

Batch (a dict; every leaf has the leading row axis R = prompts * G, sharded on the mesh's
data axes; letters as in ``policy_logprobs.py``):

    prompt_ids [R, P], prompt_mask [R, P]            left-padded prompts
    completion_ids [R, L], completion_mask [R, L]    sampled tokens, 1 up to the stop token
    advantages [R]                                   from ``rollout.compute_advantages``
    old_logprobs [R, L]    needed when rl.num_iterations (mu) > 1: logprobs of the policy that
                           sampled, fixed for the mu updates on this batch
    ref_logprobs [R, L]    needed when rl.beta > 0: logprobs of the frozen reference

Both extra fields come from :func:`make_rollout_scorer`, called **once per rollout**, before
the mu train steps: the reference does not change across them, so computing it inside the
step would repeat the same forward mu times. With mu = 1 the step ignores ``old_logprobs``
and uses ``stop_gradient(logp)`` instead (ratio exactly 1, the update is REINFORCE with the
group baseline); with beta = 0 the reference forward is skipped altogether. The old
logprobs are recomputed by the same teacher-forced forward as the step's rather than taken
from the sampler (``Completions.logprobs``): the KV-cache decode differs from it by rounding
(visibly in bfloat16), which would put the first of the mu ratios off 1.

One RL step, as the orchestrator runs it (the first three lines once per run):

    state = init_train_state(trainable, optimizer, rng, mesh)   # trainable: LoRA tree or params
    step = make_train_step(model, loss_cfg, step_cfg, optimizer, schedule, mesh, state, base)
    scorer = make_rollout_scorer(model, loss_cfg, step_cfg, mesh, state, base_or_reference)
    batch, rollout_metrics = rollout.make_train_batch(completions, rewards, mesh, G, adv, eps)
    batch = scorer(state, batch)
    for _ in range(mu):
        state, metrics = step(state, batch)

Reference policy: with LoRA it is the frozen base with the LoRA tree absent (no second model
in memory). In full fine-tuning there is no such free reference: the caller keeps a second
copy of the initial params and passes it as ``base`` to the scorer (only when beta > 0).

Loss and gradient accumulation (see ``aggregation.py``, ``microbatch.py``): the normalizer Z
of the aggregation is computed on the full batch, *before* the split into M strided
micro-batches, and each micro-batch contributes ``sum_{i in m, t} w[i, t] l[i, t] / Z``, so
the summed loss, gradients and metrics do not depend on M (nor on the device count).

Sharding: the state by ``parallel.PARAM_SHARDING_RULES`` (see ``train_state.py``), the frozen
base by the same rules, the batch on ``('data', 'fsdp')``, metrics replicated. The state is
donated: the caller must not reuse the ``state`` it passed in.
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

from rlvr_jax.models.decoder import Decoder
from rlvr_jax.parallel import batch_sharding, param_shardings, replicated
from rlvr_jax.rl.losses import LossConfig, finalize_metrics, loss_normalizer, policy_loss
from rlvr_jax.rl.microbatch import accumulate_gradients, split_microbatches
from rlvr_jax.rl.policy_logprobs import completion_logprobs, model_variables
from rlvr_jax.rl.train_state import TrainState, train_state_shardings

PyTree = Any
Batch = dict[str, jax.Array]
TRAINABLE_MODES = ("lora", "full")
INPUT_KEYS = ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask")


@dataclasses.dataclass(frozen=True)
class TrainStepConfig:
    """How the step trains; every field is a config key under ``rl``."""

    trainable: str  # 'lora': train the LoRA tree, base frozen; 'full': train every param
    num_microbatches: int  # M: gradient accumulation steps per update (R divisible by M)
    num_iterations: int  # mu: updates per rollout batch; > 1 uses the batch's old_logprobs
    # G: rows p*G .. p*G+G-1 share one prompt (the sampler's layout), so the forward runs each
    # prompt once per micro-batch group (policy_logprobs.py); 1 assumes nothing about rows.
    group_size: int

    def __post_init__(self):
        if self.trainable not in TRAINABLE_MODES:
            raise ValueError(
                f"rl.trainable: unknown mode {self.trainable!r}; choose one of {TRAINABLE_MODES}"
            )
        if self.num_microbatches < 1:
            raise ValueError(f"rl.num_microbatches must be >= 1, got {self.num_microbatches}")
        if self.num_iterations < 1:
            raise ValueError(f"rl.num_iterations must be >= 1, got {self.num_iterations}")
        if self.group_size < 1:
            raise ValueError(f"sampling.num_samples must be >= 1, got {self.group_size}")

    @property
    def rows_per_prompt(self) -> int:
        """Consecutive rows of one micro-batch that share a prompt.

        The strided split gives micro-batch m the rows p*G + s with s = m (mod M): G / M
        consecutive rows per prompt when M divides G; otherwise no sharing is assumed.
        """
        G, M = self.group_size, self.num_microbatches
        return G // M if G % M == 0 else 1


def policy_variables(mode: str, base: PyTree | None, trainable: PyTree) -> dict[str, PyTree]:
    """Flax variables of the policy being trained: base + LoRA, or the trainable params."""
    if mode == "lora":
        return model_variables(base, trainable)
    return model_variables(trainable, None)


def _check_batch(batch: Batch, step_cfg: TrainStepConfig, loss_cfg: LossConfig) -> None:
    missing = [k for k in (*INPUT_KEYS, "advantages") if k not in batch]
    if step_cfg.num_iterations > 1 and "old_logprobs" not in batch:
        missing.append("old_logprobs (rl.num_iterations > 1; see make_rollout_scorer)")
    if loss_cfg.beta > 0 and "ref_logprobs" not in batch:
        missing.append("ref_logprobs (rl.beta > 0; see make_rollout_scorer)")
    if missing:
        raise ValueError(f"train batch is missing {missing}; it has {sorted(batch)}")


def loss_and_grads(
    base: PyTree | None,
    trainable: PyTree,
    batch: Batch,
    *,
    model: Decoder,
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
    used = {"old_logprobs": use_old, "ref_logprobs": use_ref}
    keys = [*INPUT_KEYS, "advantages", *(k for k, needed in used.items() if needed)]
    rows = {k: batch[k] for k in keys}  # only these are split into micro-batches

    def loss_fn(trainable: PyTree, mb: Batch) -> tuple[jax.Array, dict[str, jax.Array]]:
        logp_RL, entropy_RL = completion_logprobs(
            model,
            policy_variables(step_cfg.trainable, base, trainable),
            mb["prompt_ids"],
            mb["prompt_mask"],
            mb["completion_ids"],
            mb["completion_mask"],
            rows_per_prompt=step_cfg.rows_per_prompt,
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
        )

    return accumulate_gradients(loss_fn, trainable, rows, step_cfg.num_microbatches)


def train_step(
    base: PyTree | None,
    state: TrainState,
    batch: Batch,
    *,
    model: Decoder,
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
        base, state.trainable, batch, model=model, loss_cfg=loss_cfg, step_cfg=step_cfg
    )
    updates, opt_state = optimizer.update(grads, state.opt_state, state.trainable)
    trainable = optax.apply_updates(state.trainable, updates)
    metrics = {
        "loss": loss,
        **finalize_metrics(sums),
        "grad/norm": optax.tree.norm(grads),
        "optim/lr": jnp.asarray(lr_schedule(state.step), jnp.float32),
    }
    new_state = state.replace(step=state.step + 1, trainable=trainable, opt_state=opt_state)
    return new_state, metrics


def place_params(params: PyTree | None, mesh: Mesh) -> PyTree | None:
    """``params`` on ``mesh`` by the sharding rules; arrays already there are not copied."""
    return None if params is None else jax.device_put(params, param_shardings(params, mesh))


def _check_base(mode: str, base: PyTree | None, needs_reference: bool) -> None:
    if mode == "lora" and base is None:
        raise ValueError("rl.trainable = 'lora' needs the frozen base params (base=...)")
    if mode == "full" and base is not None and not needs_reference:
        raise ValueError(
            "rl.trainable = 'full': the params live in the state; pass base=None "
            "(a reference copy is only needed for the scorer when rl.beta > 0)"
        )


def make_train_step(
    model: Decoder,
    loss_cfg: LossConfig,
    step_cfg: TrainStepConfig,
    optimizer: optax.GradientTransformation,
    lr_schedule: optax.Schedule,
    mesh: Mesh,
    state: TrainState,
    base: PyTree | None,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """``step(state, batch) -> (state, metrics)``, jitted once over ``mesh``, state donated.

    ``state`` (arrays or ShapeDtypeStructs) gives the state's shardings; ``base`` is the
    frozen base params with LoRA, None in full fine-tuning; it is placed by
    ``param_shardings`` (a no-op when it already is: place it once and pass the same tree to
    the scorer). ``lr_schedule`` is ``optim.make_schedule(cfg)`` of the same optimizer.
    """
    _check_base(step_cfg.trainable, base, needs_reference=False)
    base = place_params(base, mesh)
    state_sh = train_state_shardings(state, mesh)
    fn = functools.partial(
        train_step,
        model=model,
        loss_cfg=loss_cfg,
        step_cfg=step_cfg,
        optimizer=optimizer,
        lr_schedule=lr_schedule,
    )
    jitted = jax.jit(
        fn,
        in_shardings=(param_shardings(base, mesh), state_sh, batch_sharding(mesh)),
        out_shardings=(state_sh, replicated(mesh)),
        donate_argnames=("state",),
    )
    return functools.partial(jitted, base)


def _unsplit(x_MB: jax.Array) -> jax.Array:
    """Inverse of ``split_microbatches``: [M, R // M, ...] -> [R, ...] in the original order."""
    return jnp.swapaxes(x_MB, 0, 1).reshape(-1, *x_MB.shape[2:])


def score_rollout(
    base: PyTree | None,
    trainable: PyTree,
    batch: Batch,
    *,
    model: Decoder,
    loss_cfg: LossConfig,
    step_cfg: TrainStepConfig,
) -> Batch:
    """``old_logprobs`` (policy, mu > 1) and ``ref_logprobs`` (reference, beta > 0), [R, L].

    Forward only, over the same M micro-batches as the step (``lax.map``), so its peak
    memory stays below the step's. The reference is ``base`` without any LoRA tree.
    """
    needs_old = step_cfg.num_iterations > 1
    needs_ref = loss_cfg.beta > 0
    rows_MB = split_microbatches({k: batch[k] for k in INPUT_KEYS}, step_cfg.num_microbatches)

    def score(mb: Batch) -> Batch:
        inputs = [mb[k] for k in INPUT_KEYS]
        out = {}
        if needs_old:
            variables = policy_variables(step_cfg.trainable, base, trainable)
            out["old_logprobs"] = completion_logprobs(
                model, variables, *inputs, rows_per_prompt=step_cfg.rows_per_prompt
            )[0]
        if needs_ref:
            out["ref_logprobs"] = completion_logprobs(
                model,
                model_variables(base, None),
                *inputs,
                rows_per_prompt=step_cfg.rows_per_prompt,
            )[0]
        return out

    return jax.tree.map(_unsplit, jax.lax.map(score, rows_MB))


def make_rollout_scorer(
    model: Decoder,
    loss_cfg: LossConfig,
    step_cfg: TrainStepConfig,
    mesh: Mesh,
    state: TrainState,
    base: PyTree | None,
) -> Callable[[TrainState, Batch], Batch]:
    """``score(state, batch) -> batch`` plus ``old_logprobs`` / ``ref_logprobs`` as needed.

    Call once per rollout, before the mu train steps (it reads ``state.trainable``, which
    the first step donates). ``base``: the frozen base with LoRA; in full fine-tuning the
    reference copy of the initial params when beta > 0, else None (placed as in
    :func:`make_train_step`). With mu = 1 and
    beta = 0 it returns the batch unchanged and compiles nothing.
    """
    needs_ref = loss_cfg.beta > 0
    if step_cfg.trainable == "full" and needs_ref and base is None:
        raise ValueError(
            "rl.trainable = 'full' with rl.beta > 0 needs the reference params: pass a copy "
            "of the initial params as base"
        )
    _check_base(step_cfg.trainable, base, needs_reference=needs_ref)
    if step_cfg.num_iterations == 1 and not needs_ref:
        return lambda state, batch: batch
    base = place_params(base, mesh)
    fn = functools.partial(score_rollout, model=model, loss_cfg=loss_cfg, step_cfg=step_cfg)
    jitted = jax.jit(
        fn,
        in_shardings=(
            param_shardings(base, mesh),
            train_state_shardings(state, mesh).trainable,
            batch_sharding(mesh),
        ),
        out_shardings=batch_sharding(mesh),
    )

    def scorer(state: TrainState, batch: Batch) -> Batch:
        inputs = {k: batch[k] for k in INPUT_KEYS}
        return {**batch, **jitted(base, state.trainable, inputs)}

    return scorer
