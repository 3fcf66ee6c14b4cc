"""From sampled completions and their rewards to a sharded train batch.

The orchestrator's RL step, in order:

    out = rollout.rollout(run, state.trainable, rows, rng, sampling_cfg)   # rlvr_jax/rollout.py
    batch, metrics = make_train_batch(out.completions, out.scores.total, mesh, G, estimator, eps)
    batch = scorer(state, batch)               # train_step.make_rollout_scorer: old / ref logprobs

Rows are group-major (row r is sample r % G of prompt r // G), as the sampler returns them.
Advantages are computed *after* the batch is placed on the mesh, under ``jit`` on the global
array, so batch-level estimators see every row of every host.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from rlvr_jax.multihost import gather_rows
from rlvr_jax.parallel import batch_sharding, shard_batch
from rlvr_jax.rl.advantages import get_advantage_estimator
from rlvr_jax.sampling import Completions

Batch = dict[str, jax.Array]


@functools.partial(jax.jit, static_argnames=("group_size", "estimator", "eps"))
def compute_advantages(
    rewards_R: jax.Array, group_size: int, estimator: str, eps: float
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """``(adv_R, stats)`` of the estimator named ``estimator`` (``rl.advantage``).

    ``stats``: ``advantage/{mean,std,min,max}`` and ``frac_zero_std`` (see advantages.py).
    """
    return get_advantage_estimator(estimator)(rewards_R, group_size, eps)


def make_train_batch(
    completions: Completions,
    rewards_R: Any,
    mesh: Mesh,
    group_size: int,
    estimator: str,
    eps: float,
) -> tuple[Batch, dict[str, jax.Array]]:
    """The train batch (see ``train_step.py``) on ``mesh`` and the rollout metrics.

    ``completions`` and ``rewards_R`` hold this process's rows. Metrics: the advantage
    statistics and ``frac_zero_std``.
    """
    get_advantage_estimator(estimator)  # fail on a bad name before any device work
    host = {
        "prompt_ids": np.asarray(completions.prompt_ids, np.int32),
        "prompt_mask": np.asarray(completions.prompt_mask, np.int32),
        "completion_ids": np.asarray(completions.ids, np.int32),
        "completion_mask": np.asarray(completions.mask, np.int32),
        "sampler_logprobs": np.asarray(completions.sampling_logprobs, np.float32),
        "rewards": np.asarray(rewards_R, np.float32),
    }
    if host["rewards"].shape != (host["prompt_ids"].shape[0],):
        raise ValueError(
            f"rewards have shape {host['rewards'].shape}, expected one per completion "
            f"({host['prompt_ids'].shape[0]},)"
        )
    placed = shard_batch(host, mesh)
    advantages_R, metrics = compute_advantages(placed.pop("rewards"), group_size, estimator, eps)
    placed["advantages"] = jax.device_put(advantages_R, batch_sharding(mesh))
    return placed, metrics


def completion_metrics(completions: list[Completions]) -> dict[str, float]:
    """``completion/length_mean`` and ``completion/truncated_frac`` over every row of every
    process (of each batch of ``completions``)."""
    lengths = np.concatenate([gather_rows(np.asarray(c.lengths, np.float32)) for c in completions])
    truncated = np.concatenate(
        [gather_rows(np.asarray(c.truncated, np.float32)) for c in completions]
    )
    return {
        "completion/length_mean": float(np.mean(lengths)),
        "completion/truncated_frac": float(np.mean(truncated)),
    }
