"""Online DPO's pair batch, its reference scorer and the jitted update (``rl.algorithm = 'dpo'``).

Per RL step:

    pairs = dpo.select_pairs(correct_R, rewards_R, G, k)        # host, this process's rows
    batch = make_pair_batch(completions, pairs, mesh)            # C = B * k pair rows
    batch = scorer(state, batch)                                # + ref_chosen, ref_rejected
    state, metrics = step(state, batch)

A pair row holds its prompt and both completions (``chosen_ids/mask``,
``rejected_ids/mask`` [C, L]) and ``pair_valid`` [C]; rows split into micro-batches and
shard over devices as pairs, so a pair never straddles two of them. The forward
interleaves each pair's two completions under their shared prompt (run once per pair,
``policy_logprobs`` with ``rows_per_prompt = 2``). The reference is ``policy.reference``,
the base with LoRA absent. The loss is the mean over valid pairs of the batch
(``dpo.preference_loss``); a batch without any valid pair leaves the policy and its
optimizer state untouched (an Adam step on zero gradients would still move the weights).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from rlvr_jax.parallel import batch_sharding, param_shardings, shard_batch
from rlvr_jax.policy import Policy
from rlvr_jax.rl.dpo import DPOConfig, Pairs, preference_loss
from rlvr_jax.rl.microbatch import accumulate_gradients, merge_microbatches, split_microbatches
from rlvr_jax.rl.policy_logprobs import completion_logprobs
from rlvr_jax.rl.train_state import TrainState, apply_if
from rlvr_jax.rl.train_step import jit_update
from rlvr_jax.sampling import Completions

PyTree = Any
Batch = dict[str, jax.Array]
PAIR_KEYS = (
    "prompt_ids",
    "prompt_mask",
    "chosen_ids",
    "chosen_mask",
    "rejected_ids",
    "rejected_mask",
)
NUM_PAIRS = "dpo/pairs"


def make_pair_batch(completions: Completions, pairs: Pairs, mesh: Mesh) -> Batch:
    """The pair rows of this process's ``pairs`` (indices into its rollout rows) on ``mesh``."""
    ids, mask = np.asarray(completions.ids, np.int32), np.asarray(completions.mask, np.int32)
    host = {
        "prompt_ids": np.asarray(completions.prompt_ids, np.int32)[pairs.chosen],
        "prompt_mask": np.asarray(completions.prompt_mask, np.int32)[pairs.chosen],
        "chosen_ids": ids[pairs.chosen],
        "chosen_mask": mask[pairs.chosen],
        "rejected_ids": ids[pairs.rejected],
        "rejected_mask": mask[pairs.rejected],
        "pair_valid": pairs.valid.astype(np.float32),
    }
    return shard_batch(host, mesh)


def pair_logprobs(policy: Policy, variables: dict[str, PyTree], mb: Batch) -> jax.Array:
    """Sequence log-probabilities ``[n, 2]`` (chosen, rejected) of the n pairs in ``mb``."""
    n, L = mb["chosen_ids"].shape

    def interleave(a: jax.Array, b: jax.Array) -> jax.Array:
        return jnp.stack([a, b], axis=1).reshape(2 * n, *a.shape[1:])

    completion_mask = interleave(mb["chosen_mask"], mb["rejected_mask"])
    logp_RL, _ = completion_logprobs(
        policy.model,
        variables,
        jnp.repeat(mb["prompt_ids"], 2, axis=0),
        jnp.repeat(mb["prompt_mask"], 2, axis=0),
        interleave(mb["chosen_ids"], mb["rejected_ids"]),
        completion_mask,
        rows_per_prompt=2,
    )
    return jnp.sum(logp_RL, axis=1).reshape(n, 2)


def score_pairs(reference: PyTree, batch: Batch, *, policy: Policy, num_microbatches: int) -> Batch:
    """``ref_chosen``, ``ref_rejected`` [C]: the reference's sequence log-probabilities."""
    rows_MC = split_microbatches({k: batch[k] for k in PAIR_KEYS}, num_microbatches)
    variables = policy.reference_variables(reference)
    ref_C2 = merge_microbatches(
        jax.lax.map(lambda mb: pair_logprobs(policy, variables, mb), rows_MC)
    )
    return {**batch, "ref_chosen": ref_C2[:, 0], "ref_rejected": ref_C2[:, 1]}


def dpo_train_step(
    frozen: PyTree | None,
    state: TrainState,
    batch: Batch,
    *,
    policy: Policy,
    cfg: DPOConfig,
    beta: float,
    num_microbatches: int,
    optimizer: optax.GradientTransformation,
    lr_schedule: optax.Schedule,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One update on the batch's valid pairs. Metrics: ``loss``, the ``dpo/*`` means of
    ``dpo.preference_loss`` over valid pairs, ``dpo/pairs``, ``grad/norm``, ``optim/lr``."""
    num_pairs = jnp.sum(batch["pair_valid"])
    normalizer = jnp.maximum(num_pairs, 1.0)

    def loss_fn(trainable: PyTree, mb: Batch) -> tuple[jax.Array, dict[str, jax.Array]]:
        logp_n2 = pair_logprobs(policy, policy.variables(frozen, trainable), mb)
        loss_n, stats = preference_loss(
            logp_n2[:, 0], logp_n2[:, 1], mb["ref_chosen"], mb["ref_rejected"], beta, cfg.loss
        )
        valid_n = mb["pair_valid"]
        sums = {k: jnp.sum(valid_n * v) for k, v in stats.items()}
        return jnp.sum(valid_n * loss_n) / normalizer, sums

    keys = (*PAIR_KEYS, "pair_valid", "ref_chosen", "ref_rejected")
    rows = {k: batch[k] for k in keys}
    loss, grads, sums = accumulate_gradients(loss_fn, state.trainable, rows, num_microbatches)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.trainable)
    has_pairs = num_pairs > 0
    trainable = apply_if(has_pairs, optax.apply_updates(state.trainable, updates), state.trainable)
    metrics = {
        "loss": loss,
        **{k: v / normalizer for k, v in sums.items()},
        NUM_PAIRS: num_pairs,
        "grad/norm": optax.tree.norm(grads),
        "optim/lr": jnp.asarray(lr_schedule(state.step), jnp.float32),
    }
    new_state = state.replace(
        step=state.step + 1,
        trainable=trainable,
        opt_state=apply_if(has_pairs, opt_state, state.opt_state),
    )
    return new_state, metrics


def make_pair_scorer(policy: Policy, num_microbatches: int) -> Callable[[TrainState, Batch], Batch]:
    """``score(state, batch) -> batch`` plus the reference's log-probabilities, jitted."""
    if policy.reference is None:
        raise ValueError(
            "rl.algorithm = 'dpo' needs the reference: build the policy with rl.beta > 0"
        )
    mesh = policy.mesh
    fn = functools.partial(score_pairs, policy=policy, num_microbatches=num_microbatches)
    jitted = jax.jit(
        fn,
        in_shardings=(param_shardings(policy.reference, mesh), batch_sharding(mesh)),
        out_shardings=batch_sharding(mesh),
    )
    return lambda state, batch: jitted(policy.reference, batch)


def make_dpo_train_step(
    policy: Policy,
    cfg: DPOConfig,
    beta: float,
    num_microbatches: int,
    optimizer: optax.GradientTransformation,
    lr_schedule: optax.Schedule,
    state: TrainState,
    remat: str = "none",
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """``step(state, batch) -> (state, metrics)``, jitted once, state donated; ``remat``:
    ``rl.remat``."""
    fn = functools.partial(
        dpo_train_step,
        policy=policy.for_training(remat),
        cfg=cfg,
        beta=beta,
        num_microbatches=num_microbatches,
        optimizer=optimizer,
        lr_schedule=lr_schedule,
    )
    return jit_update(fn, state, policy.mesh, policy.frozen)
