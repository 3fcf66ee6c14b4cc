"""Reward-hacking diagnostics: per-reward statistics and their link to correctness.

A shaping reward (format, length) that rises while `corr_with_correct` falls towards
zero or below is being earned without solving the task: the classic sign of reward
hacking. All values are plain floats, ready for any observer.
"""

from __future__ import annotations

import numpy as np

from rlvr_jax.rewards.combine import RewardOutput


def correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two vectors; 0.0 when either is constant (undefined)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.size < 2 or x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def reward_metrics(output: RewardOutput) -> dict[str, float]:
    """Metrics for one scored batch.

    For each reward label and for `total`: `reward/<label>/mean`, `reward/<label>/std`,
    `reward/<label>/corr_with_correct`; plus `reward/correct_frac`, the fraction of
    completions the correctness verifier accepts.
    """
    correct = output.correct.astype(np.float64)
    metrics = {"reward/correct_frac": float(correct.mean()) if correct.size else 0.0}
    for label, values in {**output.per_fn, "total": output.total}.items():
        values = np.asarray(values, np.float64)
        metrics[f"reward/{label}/mean"] = float(values.mean()) if values.size else 0.0
        metrics[f"reward/{label}/std"] = float(values.std()) if values.size else 0.0
        metrics[f"reward/{label}/corr_with_correct"] = correlation(values, correct)
    return metrics
