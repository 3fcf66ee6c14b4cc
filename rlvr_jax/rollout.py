"""The one rollout: rows -> completions -> decoded texts -> rewards and the correctness verdict.

Training (`train.rl_step`) and evaluation (`evaluation.runner`) both call `rollout`, so a
completion is sampled, decoded and judged the same way wherever it is counted:

    out = rollout(run, trainable, rows, rng, sampling_cfg)
    out.completions      # Completions [R = B * G rows]: ids, masks, logprobs, lengths, truncated
    out.texts            # [R] decoded completions (special tokens dropped)
    out.scores.per_fn    # reward label -> [R] float32;  .total [R] (the RL reward)
    out.scores.correct   # [R] bool, `rewards.correctness` with its configured params

Rewards and the verifier are called through the reward registry (`rewards.combine`) with
every row field, so a task whose verifier needs `numbers` and `target` (countdown) is
scored in evaluation exactly as in training. In a mixture each row's own task's rewards
and verifier score its completions (`rewards.tasks.score_tasks`).

In a multi-process run each process rolls out its own rows (sampling itself is one
data-parallel program over all devices); `global_scores` gathers the scores of every
process for metrics that must describe the whole batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from rlvr_jax.multihost import gather_rows
from rlvr_jax.observers.metrics import timed
from rlvr_jax.rewards import RewardOutput, rows_to_fields
from rlvr_jax.rewards.tasks import score_tasks
from rlvr_jax.run_setup import RunSetup, decode_completions
from rlvr_jax.sampling import Completions, SamplingConfig


@dataclasses.dataclass(frozen=True)
class Rollout:
    rows: tuple[dict, ...]  # the B rows, in order
    completions: Completions  # R = B * G rows, group-major
    texts: tuple[str, ...]  # [R]
    scores: RewardOutput
    seconds: dict[str, float]  # time/sample_s, time/reward_s (observers.metrics.timed)

    @property
    def group_size(self) -> int:
        return len(self.texts) // len(self.rows)


def rollout(
    run: RunSetup,
    trainable: Any | None,
    rows: Sequence[dict],
    rng: jax.Array,
    cfg: SamplingConfig,
) -> Rollout:
    """`cfg.num_samples` completions of each row, decoded and scored.

    `trainable` is the train state's trainable tree; None samples the base model. The
    sampler is waited for before the reward phase starts, so the two timings split the
    wall time honestly.
    """
    rows = tuple(rows)
    seconds: dict[str, float] = {}
    with timed("sample", seconds):
        completions = run.policy.sample(
            trainable, run.prompt_ids(list(rows)), rng, cfg, run.special_tokens
        )
        lengths = np.asarray(completions.lengths)  # waits for the sampler
    with timed("reward", seconds):
        texts = decode_completions(run.tokenizer, completions)
        G = cfg.num_samples
        task_R = np.repeat([run.task_index(row) for row in rows], G)

        def fields_of(idx_R: np.ndarray) -> dict[str, list]:  # idx_R: whole groups, in order
            return rows_to_fields([rows[i] for i in idx_R[::G] // G], repeat=G)

        reward_sets = [(t.name, t.rewards) for t in run.tasks]
        scores = score_tasks(reward_sets, task_R, texts, fields_of, lengths.tolist())
    return Rollout(rows, completions, tuple(texts), scores, seconds)


def global_scores(scores: RewardOutput) -> RewardOutput:
    """The scores of every process's rows, in global row order (this process's alone when
    there is one process)."""
    return RewardOutput(
        per_fn={label: gather_rows(values) for label, values in scores.per_fn.items()},
        total=gather_rows(scores.total),
        correct=gather_rows(scores.correct),
        task=gather_rows(scores.task),
    )
