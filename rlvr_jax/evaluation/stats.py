"""Uncertainty and paired tests over questions (numpy and the standard library only).

Shape letters: Q questions, B bootstrap resamples or sign-flip permutations.

* `bootstrap_ci`: percentile bootstrap for the mean of per-question scores. Resample
  the Q questions with replacement B times, take each resample's mean, and report the
  (1 - confidence) / 2 and (1 + confidence) / 2 quantiles of those B means (numpy's
  default linear interpolation). Questions are the unit because the n samples of one
  question are correlated; the scores can be any per-question value (0/1 greedy
  correctness, a pass@k estimate in [0, 1], a mean length).
* `mcnemar_exact`: two models on the same questions, binary outcome. Only the
  discordant questions carry information: b solved by A only, c by B only. Under H0
  (equal accuracy) b ~ Binomial(b + c, 1/2), and the exact two-sided p-value is

      p = min(1, 2 * sum_{i=0}^{min(b, c)} C(b + c, i) / 2^(b + c))

  (1 when b + c = 0), computed with exact integers.
* `sign_flip_pvalue`: the paired randomization test for non-binary per-question scores
  (pass@k estimates, rates over samples). Under H0 each difference d_q = a_q - b_q is
  symmetric about 0, so flipping its sign is as likely as not. Two-sided Monte Carlo
  p-value with the +1 correction, p = (1 + #{|sum(s_q d_q)| >= |sum(d_q)|}) / (1 + B),
  s_q uniform in {-1, +1}; 1 when every difference is 0.
* `paired_comparison`: difference of means A - B with a paired bootstrap interval
  (the bootstrap of the per-question differences: the same resampled questions for
  both models), and the p-value of McNemar when both score vectors are 0/1, else of
  the sign-flip test.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Resampled indices are drawn in chunks of at most this many entries (B_chunk * Q), so
# memory stays bounded for large Q and B.
_MAX_CHUNK_ENTRIES = 1 << 22


def _check_scores(values: Any, name: str) -> np.ndarray:
    values_Q = np.asarray(values, dtype=np.float64)
    if values_Q.ndim != 1 or values_Q.size == 0:
        raise ValueError(f"{name}: a non-empty 1-D array of per-question scores")
    if not np.all(np.isfinite(values_Q)):
        raise ValueError(f"{name}: scores must be finite")
    return values_Q


def _check_confidence(confidence: float, name: str) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"{name}: confidence must lie in (0, 1), got {confidence!r}")


def _check_count(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _chunks(total: int, num_questions: int) -> list[int]:
    rows = max(1, _MAX_CHUNK_ENTRIES // max(1, num_questions))
    return [min(rows, total - start) for start in range(0, total, rows)]


def bootstrap_means(values: Any, *, num_resamples: int, seed: int) -> np.ndarray:
    """[B] means of `values` [Q] resampled with replacement (seeded, reproducible)."""
    values_Q = _check_scores(values, "bootstrap_means")
    _check_count(num_resamples, "bootstrap_means: num_resamples")
    rng = np.random.default_rng(seed)
    num_questions = values_Q.size
    means = []
    for rows in _chunks(num_resamples, num_questions):
        index_BQ = rng.integers(0, num_questions, size=(rows, num_questions))
        means.append(values_Q[index_BQ].mean(axis=1))
    return np.concatenate(means)


def bootstrap_ci(
    values: Any, *, confidence: float, num_resamples: int, seed: int
) -> tuple[float, float]:
    """Percentile bootstrap interval (low, high) for the mean of per-question `values` [Q].

    The quantiles (1 - confidence) / 2 and (1 + confidence) / 2 of `num_resamples`
    resampled means; see the module docstring. A constant vector gives (v, v).
    """
    _check_confidence(confidence, "bootstrap_ci")
    means_B = bootstrap_means(values, num_resamples=num_resamples, seed=seed)
    alpha = 1.0 - confidence
    low, high = np.quantile(means_B, [alpha / 2, 1.0 - alpha / 2])
    return float(low), float(high)


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts b = `only_a`, c = `only_b`.

    p = min(1, 2 * P(X <= min(b, c))), X ~ Binomial(b + c, 1/2); 1 when b + c = 0.
    Exact integer arithmetic, then one correctly rounded division.
    """
    for name, count in (("only_a", only_a), ("only_b", only_b)):
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
            raise ValueError(f"mcnemar_exact: {name} must be a non-negative int, got {count!r}")
    total = int(only_a) + int(only_b)
    if total == 0:
        return 1.0
    tail = sum(math.comb(total, i) for i in range(min(int(only_a), int(only_b)) + 1))
    return min(1.0, 2 * tail / 2**total)


def sign_flip_pvalue(differences: Any, *, num_permutations: int, seed: int) -> float:
    """Two-sided paired sign-flip (randomization) test p-value; see the module docstring."""
    diffs_Q = _check_scores(differences, "sign_flip_pvalue")
    _check_count(num_permutations, "sign_flip_pvalue: num_permutations")
    observed = abs(float(diffs_Q.sum()))
    if not np.any(diffs_Q):
        return 1.0
    # Sums equal in exact arithmetic may differ in the last bits: compare with a margin.
    margin = 1e-9 * max(1.0, float(np.abs(diffs_Q).sum()))
    rng = np.random.default_rng(seed)
    at_least = 0
    for rows in _chunks(num_permutations, diffs_Q.size):
        signs_BQ = rng.integers(0, 2, size=(rows, diffs_Q.size)) * 2 - 1
        at_least += int(np.sum(np.abs(signs_BQ @ diffs_Q) >= observed - margin))
    return (1 + at_least) / (1 + num_permutations)


def paired_comparison(
    scores_a: Any, scores_b: Any, *, confidence: float, num_resamples: int, seed: int
) -> dict[str, Any]:
    """Compare two models' per-question scores on the same questions (aligned [Q]).

    Returns a JSON-ready dict: `num_questions`, `mean_a`, `mean_b`, `difference`
    (mean_a - mean_b), `ci_low` / `ci_high` (paired bootstrap of the differences),
    `test` and `p_value`. When both vectors are 0/1 the test is `mcnemar_exact` and the
    dict also has the 2x2 table `both_correct`, `only_a`, `only_b`, `both_wrong`;
    otherwise the test is `sign_flip` with `num_resamples` permutations.
    """
    a_Q = _check_scores(scores_a, "paired_comparison: scores_a")
    b_Q = _check_scores(scores_b, "paired_comparison: scores_b")
    if a_Q.shape != b_Q.shape:
        raise ValueError(f"paired_comparison: {a_Q.size} scores for A but {b_Q.size} for B")
    _check_confidence(confidence, "paired_comparison")
    _check_count(num_resamples, "paired_comparison: num_resamples")
    diffs_Q = a_Q - b_Q
    ci_low, ci_high = bootstrap_ci(
        diffs_Q, confidence=confidence, num_resamples=num_resamples, seed=seed
    )
    result: dict[str, Any] = {
        "num_questions": int(a_Q.size),
        "mean_a": float(a_Q.mean()),
        "mean_b": float(b_Q.mean()),
        "difference": float(diffs_Q.mean()),
        "ci_low": ci_low,
        "ci_high": ci_high,
    }
    binary = bool(np.all((a_Q == 0) | (a_Q == 1)) and np.all((b_Q == 0) | (b_Q == 1)))
    if binary:
        a_bool, b_bool = a_Q == 1, b_Q == 1
        table = {
            "both_correct": int(np.sum(a_bool & b_bool)),
            "only_a": int(np.sum(a_bool & ~b_bool)),
            "only_b": int(np.sum(~a_bool & b_bool)),
            "both_wrong": int(np.sum(~a_bool & ~b_bool)),
        }
        p_value = mcnemar_exact(table["only_a"], table["only_b"])
        result.update(test="mcnemar_exact", p_value=p_value, **table)
    else:
        p_value = sign_flip_pvalue(diffs_Q, num_permutations=num_resamples, seed=seed)
        result.update(test="sign_flip", p_value=p_value)
    return result
