"""McNemar against hand computation, bootstrap coverage by simulation, paired comparison."""

import itertools
import math

import numpy as np
import pytest

from rlvr_jax.evaluation import (
    bootstrap_ci,
    mcnemar_exact,
    paired_comparison,
    sign_flip_pvalue,
)


def test_mcnemar_exact_textbook_value():
    # b = 10 discordant pairs favour A, c = 2 favour B; n = b + c = 12.
    # P(X <= 2 | n=12, p=1/2) = (C(12,0) + C(12,1) + C(12,2)) / 2^12 = (1 + 12 + 66) / 4096
    #                         = 79 / 4096; two-sided p = 2 * 79 / 4096 = 0.038574...
    assert 1 + 12 + 66 == 79 and 2**12 == 4096
    assert mcnemar_exact(10, 2) == pytest.approx(158 / 4096, rel=1e-15)
    assert mcnemar_exact(10, 2) == pytest.approx(0.03857421875, abs=1e-12)
    assert mcnemar_exact(2, 10) == mcnemar_exact(10, 2)  # symmetric


def test_mcnemar_exact_edge_cases():
    assert mcnemar_exact(0, 0) == 1.0  # no discordant pairs: no evidence
    assert mcnemar_exact(5, 5) == 1.0  # capped at 1
    assert mcnemar_exact(6, 0) == pytest.approx(2 / 64)  # 2 * (1/2)^6
    # Large counts stay exact and finite (2^2000 is no float).
    assert 0.0 < mcnemar_exact(1100, 900) < 1e-5
    with pytest.raises(ValueError, match="non-negative"):
        mcnemar_exact(-1, 3)


def test_bootstrap_ci_covers_the_true_mean_in_at_least_90_percent_of_trials():
    true_mean, num_questions, num_trials = 0.3, 100, 200
    rng = np.random.default_rng(0)
    samples_TQ = (rng.random((num_trials, num_questions)) < true_mean).astype(np.float64)
    covered = 0
    for trial, values in enumerate(samples_TQ):
        low, high = bootstrap_ci(values, confidence=0.95, num_resamples=1000, seed=trial)
        covered += low <= true_mean <= high
    coverage = covered / num_trials
    assert coverage >= 0.90, f"95% bootstrap interval covered the truth in only {coverage:.0%}"


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    values = np.random.default_rng(1).random(50)
    first = bootstrap_ci(values, confidence=0.95, num_resamples=2000, seed=7)
    assert first == bootstrap_ci(values, confidence=0.95, num_resamples=2000, seed=7)
    assert first[0] < values.mean() < first[1]
    narrow = bootstrap_ci(values, confidence=0.5, num_resamples=2000, seed=7)
    assert first[0] < narrow[0] < narrow[1] < first[1]
    assert bootstrap_ci([0.4] * 10, confidence=0.95, num_resamples=100, seed=0) == (0.4, 0.4)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(values, confidence=95, num_resamples=100, seed=0)
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_ci([], confidence=0.95, num_resamples=100, seed=0)


def test_sign_flip_pvalue_matches_exact_enumeration():
    diffs = np.array([0.5, 0.25, 0.75, -0.25, 0.5, 1.0, 0.25])
    observed = abs(diffs.sum())
    flips = list(itertools.product([-1, 1], repeat=diffs.size))
    exact = sum(abs(np.dot(s, diffs)) >= observed - 1e-12 for s in flips) / len(flips)
    got = sign_flip_pvalue(diffs, num_permutations=20000, seed=0)
    assert got == pytest.approx(exact, abs=0.01)
    assert sign_flip_pvalue(np.zeros(5), num_permutations=100, seed=0) == 1.0


def test_paired_comparison_binary_uses_mcnemar_with_the_table():
    # 10 questions only A solves, 2 only B, 5 both, 3 neither.
    a = [1] * 10 + [0] * 2 + [1] * 5 + [0] * 3
    b = [0] * 10 + [1] * 2 + [1] * 5 + [0] * 3
    result = paired_comparison(a, b, confidence=0.95, num_resamples=2000, seed=0)
    assert result["test"] == "mcnemar_exact"
    assert (result["only_a"], result["only_b"]) == (10, 2)
    assert (result["both_correct"], result["both_wrong"]) == (5, 3)
    assert result["p_value"] == mcnemar_exact(10, 2)
    assert result["difference"] == pytest.approx(0.4)
    assert result["ci_low"] < 0.4 < result["ci_high"]
    assert math.isclose(result["mean_a"] - result["mean_b"], result["difference"])


def test_paired_comparison_non_binary_uses_sign_flip():
    rng = np.random.default_rng(3)
    a = rng.random(40)
    result = paired_comparison(a, a - 0.2, confidence=0.95, num_resamples=2000, seed=0)
    assert result["test"] == "sign_flip"
    assert result["difference"] == pytest.approx(0.2)
    assert result["p_value"] < 0.01
    assert "only_a" not in result
    with pytest.raises(ValueError, match="scores for A"):
        paired_comparison(a, a[:-1], confidence=0.95, num_resamples=10, seed=0)
