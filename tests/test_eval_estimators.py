"""pass@k against brute-force enumeration; the majority-vote tie rule; maj@k on the first k."""

import itertools
import math

import numpy as np
import pytest

from rlvr_jax.evaluation import maj_at_k, majority_index, majority_vote, pass_at_k, vote_key


def brute_force_pass_at_k(n: int, c: int, k: int) -> float:
    """Fraction of the k-subsets of n samples (the first c correct) holding a correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in subset) for subset in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_equals_enumeration_over_all_k_subsets(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            expected = brute_force_pass_at_k(n, c, k)
            got = float(pass_at_k(n, c, k))
            assert got == pytest.approx(expected, abs=1e-12), f"n={n} c={c} k={k}"


def test_pass_at_k_is_vectorized_over_questions():
    n_Q = np.array([8, 8, 8, 5, 16])
    c_Q = np.array([0, 3, 8, 2, 1])
    got = pass_at_k(n_Q, c_Q, 4)
    expected = [1 - math.comb(n - c, 4) / math.comb(n, 4) for n, c in zip(n_Q, c_Q, strict=True)]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert got.shape == (5,)
    # A scalar n broadcasts against c [Q].
    np.testing.assert_allclose(pass_at_k(8, c_Q[:3], 4), expected[:3], atol=1e-12)


def test_pass_at_k_exact_at_the_ends_and_stable_for_large_n():
    assert pass_at_k(100, 0, 10) == 0.0  # no correct sample: exactly 0
    assert pass_at_k(100, 95, 10) == 1.0  # fewer wrong samples than k: exactly 1
    assert pass_at_k(10, 1, 1) == pytest.approx(0.1)  # pass@1 is c / n
    # n = 1000: C(n, k) overflows floats, the log-space product does not.
    expected = 1 - math.comb(900, 100) / math.comb(1000, 100)
    assert float(pass_at_k(1000, 100, 100)) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize(
    "n, c, k, message",
    [(4, 1, 5, "exceeds"), (4, 5, 1, "num_correct"), (4, -1, 1, "num_correct"), (4, 1, 0, "k")],
)
def test_pass_at_k_rejects_bad_arguments(n, c, k, message):
    with pytest.raises(ValueError, match=message):
        pass_at_k(n, c, k)


def test_vote_key_groups_equal_numbers_and_case_folded_text():
    assert vote_key("$18.00") == vote_key("18") == "18"
    assert vote_key("3/4") == vote_key("0.75")
    assert vote_key("  Option   B ") == vote_key("option b")


def test_majority_vote_most_frequent_answer_wins():
    assert majority_vote(["3", "5", "5", "3", "5"]) == "5"
    assert majority_vote(["18", "18.00", "$18", "7", "7"]) == "18"  # one group of three


def test_majority_vote_tie_goes_to_the_answer_that_appears_first():
    assert majority_vote(["7", "3", "3", "7"]) == "7"
    assert majority_vote(["3", "7", "7", "3"]) == "3"
    assert majority_vote(["1", "2", "3"]) == "1"
    assert majority_index([None, "9", "4", "4", "9"]) == 1  # "9" first occurs at index 1


def test_majority_vote_none_and_blank_abstain():
    assert majority_vote([None, None, None, "4"]) == "4"  # None never wins ...
    assert majority_vote(["", " ", "4"]) == "4"
    assert majority_vote([None, None]) is None  # ... unless everything abstains
    assert majority_index([]) is None


def test_majority_vote_returns_the_first_written_form():
    assert majority_vote(["$18.00", "18"]) == "$18.00"


def test_maj_at_k_uses_the_first_k_samples_and_the_winners_verdict():
    answers = [["5", "3", "3", "5", "5"], [None, None, "2", "2", "2"], [None, None, None]]
    correct = [[True, False, False, True, True], [False, False, True, True, True], [False] * 3]
    # k=3: "3" beats "5" two to one; k=5: "5" wins three to two.
    np.testing.assert_array_equal(maj_at_k(answers[:1], correct[:1], 3), [0.0])
    np.testing.assert_array_equal(maj_at_k(answers[:1], correct[:1], 5), [1.0])
    # k=2 in the second question: everything abstains, scored wrong.
    np.testing.assert_array_equal(maj_at_k(answers[1:], correct[1:], 2), [0.0, 0.0])
    np.testing.assert_array_equal(maj_at_k(answers[1:], correct[1:], 3), [1.0, 0.0])
    with pytest.raises(ValueError, match="exceeds"):
        maj_at_k(answers, correct, 4)
