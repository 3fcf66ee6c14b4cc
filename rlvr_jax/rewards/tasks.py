"""Rewards of a multi-task batch: each task's reward mix and verifier on its own rows only.

    out = score_tasks(reward_sets, task_R, texts, fields_of, completion_lengths)

`reward_sets[t]` is task t's `RewardSet`; `task_R` [R] the task of each completion (a
prompt's G samples share it). Task t's rewards run on the completions with
`task_R == t` alone, with the row fields of those rows (a countdown verifier never sees
an arithmetic row, which lacks its `numbers`). The output keeps the batch's static
shape: every array is [R], in batch order; `per_fn` holds `<task>/<label>` for every
reward of every task, 0 on the other tasks' rows; `total` is each row's own task's
weighted sum; `correct` its own task's verdict. With one task the labels stay bare, as
a single-task run has always logged them.

`batch_reward_metrics` is `reward_metrics` for one task. For several it adds, per
task t and over its rows only, `reward/<t>/mean`, `/std`, `/correct_frac`, `/frac` (its
share of the batch) and `reward/<t>/<label>/mean|std|corr_with_correct`;
`reward/total/*` and `reward/correct_frac` stay the whole batch's (the weighted total).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from rlvr_jax.rewards.combine import RewardOutput, RewardSet, score_completions
from rlvr_jax.rewards.diagnostics import correlation, reward_metrics


def score_tasks(
    reward_sets: Sequence[tuple[str, RewardSet]],
    task_R: np.ndarray,
    completions: Sequence[str],
    fields_of: Callable[[np.ndarray], dict[str, list]],
    completion_lengths: Sequence[int] | None = None,
) -> RewardOutput:
    """`fields_of(rows_idx)`: the row fields of the completions `rows_idx` (module docstring)."""
    task_R = np.asarray(task_R, np.int32)
    n = len(completions)
    if len(reward_sets) == 1:
        out = score_completions(
            reward_sets[0][1], completions, fields_of(np.arange(n)), completion_lengths
        )
        return RewardOutput(out.per_fn, out.total, out.correct, task_R)
    per_fn: dict[str, np.ndarray] = {}
    total, correct = np.zeros(n, np.float32), np.zeros(n, bool)
    for t, (name, reward_set) in enumerate(reward_sets):
        idx = np.flatnonzero(task_R == t)
        labels = [f"{name}/{bound.label}" for bound in reward_set.rewards]
        for label in labels:
            per_fn[label] = np.zeros(n, np.float32)
        if not idx.size:
            continue
        lengths = None if completion_lengths is None else [completion_lengths[i] for i in idx]
        out = score_completions(reward_set, [completions[i] for i in idx], fields_of(idx), lengths)
        for label, bound in zip(labels, reward_set.rewards, strict=True):
            per_fn[label][idx] = out.per_fn[bound.label]
        total[idx], correct[idx] = out.total, out.correct
    return RewardOutput(per_fn=per_fn, total=total, correct=correct, task=task_R)


def _stats(prefix: str, values: np.ndarray, correct: np.ndarray) -> dict[str, float]:
    values = np.asarray(values, np.float64)
    return {
        f"{prefix}/mean": float(values.mean()),
        f"{prefix}/std": float(values.std()),
        f"{prefix}/corr_with_correct": correlation(values, correct),
    }


def batch_reward_metrics(output: RewardOutput, names: Sequence[str]) -> dict[str, float]:
    """The reward metrics of a batch of the tasks `names` (module docstring)."""
    if len(names) < 2:
        return reward_metrics(output)
    metrics = reward_metrics(RewardOutput({}, output.total, output.correct, output.task))
    n = max(output.task.size, 1)
    for t, name in enumerate(names):
        rows = output.task == t
        metrics[f"reward/{name}/frac"] = float(rows.sum()) / n
        if not rows.any():
            continue
        correct = output.correct[rows].astype(np.float64)
        stats = _stats(f"reward/{name}", output.total[rows], correct)
        metrics[f"reward/{name}/mean"] = stats[f"reward/{name}/mean"]
        metrics[f"reward/{name}/std"] = stats[f"reward/{name}/std"]
        metrics[f"reward/{name}/correct_frac"] = float(correct.mean())
        for label, values in output.per_fn.items():
            if label.startswith(f"{name}/"):
                metrics.update(_stats(f"reward/{label}", values[rows], correct))
    return metrics
