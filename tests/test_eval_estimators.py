"""pass@k against brute-force enumeration; the majority-vote tie rule; maj@k on the first k.

The vote runs on keys (`majority_index`, `maj_at_k`); the keys here come from the
verifiers' own `vote_key`s (answer_match: canonical number or case-folded text;
countdown: the expression's exact value), as evaluation records store them.
"""

import itertools
import math

import numpy as np
import pytest

from rlvr_jax.evaluation import maj_at_k, majority_index, pass_at_k
from rlvr_jax.rewards.answer_match import vote_key
from rlvr_jax.rewards.countdown import countdown_vote_key


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


def keys(answers, key=vote_key):
    """The vote keys of extracted answers, None (nothing extracted) kept as None."""
    return [None if answer is None else key(answer) for answer in answers]


def winner(answers, key=vote_key):
    """The winning answer as first written among the samples, or None when all abstain."""
    index = majority_index(keys(answers, key))
    return None if index is None else answers[index]


def test_vote_key_groups_equal_numbers_and_case_folded_text():
    assert vote_key("$18.00") == vote_key("18") == "18"
    assert vote_key("3/4") == vote_key("0.75")
    assert vote_key("  Option   B ") == vote_key("option b")
    assert vote_key("18") != vote_key("17")
    assert vote_key("") is None and vote_key("   ") is None  # blank answers abstain


def test_countdown_vote_key_groups_expressions_by_value():
    assert countdown_vote_key("(25 - 5) * 4") == countdown_vote_key("4 * 20") == "80"
    assert countdown_vote_key("10 / 4") == countdown_vote_key("5/2") == "5/2"
    assert countdown_vote_key("25 + 5") != countdown_vote_key("4 * 20")
    assert countdown_vote_key("1 / 0") is None  # no value: abstains
    assert countdown_vote_key("two plus two") is None


def test_majority_most_frequent_key_wins():
    assert majority_index(["3", "5", "5", "3", "5"]) == 1
    assert winner(["3", "5", "5", "3", "5"]) == "5"
    assert winner(["18", "18.00", "$18", "7", "7"]) == "18"  # one group of three
    # Countdown: two expressions worth 80 out-vote one worth 30 although no text repeats.
    assert winner(["25 + 5", "(25 - 5) * 4", "4 * 20"], countdown_vote_key) == "(25 - 5) * 4"


def test_majority_tie_goes_to_the_key_that_appears_first():
    assert winner(["7", "3", "3", "7"]) == "7"
    assert winner(["3", "7", "7", "3"]) == "3"
    assert winner(["1", "2", "3"]) == "1"
    assert majority_index(["7", "3", "3", "7"]) == 0
    assert majority_index(["3", "7", "7", "3"]) == 0
    assert majority_index([None, "9", "4", "4", "9"]) == 1  # "9" first occurs at index 1
    assert majority_index(["a", "b", "b", "a", "c"]) == 0  # keys are opaque strings


def test_majority_none_and_blank_keys_abstain():
    assert majority_index([None, None, None, "4"]) == 3  # None never wins ...
    assert majority_index(["", " ", "4"]) == 2  # ... nor a blank key
    assert winner([None, None, None, "4"]) == "4"
    assert winner(["", " ", "4"]) == "4"  # blank answers have no key
    assert majority_index([None, None]) is None  # ... unless everything abstains
    assert majority_index(["", "  "]) is None
    assert winner([None, ""]) is None
    assert majority_index([]) is None


def test_majority_returns_the_first_written_form():
    assert winner(["$18.00", "18"]) == "$18.00"
    assert winner(["4 * 20", "(25 - 5) * 4"], countdown_vote_key) == "4 * 20"


def test_maj_at_k_uses_the_first_k_samples_and_the_winners_verdict():
    answers = [["5", "3", "3", "5", "5"], [None, None, "2", "2", "2"], [None, None, None]]
    keys_QA = [keys(a) for a in answers]
    correct = [[True, False, False, True, True], [False, False, True, True, True], [False] * 3]
    # k=3: "3" beats "5" two to one; k=5: "5" wins three to two.
    np.testing.assert_array_equal(maj_at_k(keys_QA[:1], correct[:1], 3), [0.0])
    np.testing.assert_array_equal(maj_at_k(keys_QA[:1], correct[:1], 5), [1.0])
    # k=2 in the second question: everything abstains, scored wrong.
    np.testing.assert_array_equal(maj_at_k(keys_QA[1:], correct[1:], 2), [0.0, 0.0])
    np.testing.assert_array_equal(maj_at_k(keys_QA[1:], correct[1:], 3), [1.0, 0.0])
    with pytest.raises(ValueError, match="exceeds"):
        maj_at_k(keys_QA, correct, 4)


def test_maj_at_k_scores_the_first_sample_of_the_winning_key():
    # "$18" and "18" share a key; the group's first sample ("$18", wrong here) is scored.
    np.testing.assert_array_equal(
        maj_at_k([keys(["$18", "18", "7"])], [[False, True, False]], 3), [0.0]
    )
    np.testing.assert_array_equal(
        maj_at_k([keys(["18", "$18", "7"])], [[True, False, False]], 3), [1.0]
    )


def test_maj_at_k_rejects_bad_arguments():
    with pytest.raises(ValueError, match="k must be"):
        maj_at_k([["1"]], [[True]], 0)
    with pytest.raises(ValueError, match="vote lists"):
        maj_at_k([["1"], ["2"]], [[True]], 1)
    with pytest.raises(ValueError, match="votes but"):
        maj_at_k([["1", "2"]], [[True]], 1)
