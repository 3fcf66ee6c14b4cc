"""Length penalty and DAPO overlong shaping, with hand-computed values."""

import pytest

from rlvr_jax.rewards.length import dapo_overlong, length_penalty, overlong_penalty


@pytest.mark.parametrize(
    "length, expected",
    [(0, 0.0), (6, 0.0), (7, -0.25), (8, -0.5), (9, -0.75), (10, -1.0), (11, -1.0), (500, -1.0)],
)
def test_dapo_overlong_piecewise(length, expected):
    assert dapo_overlong(length, max_len=10, cache_len=4) == pytest.approx(expected)


def test_overlong_penalty_uses_token_lengths_when_given():
    completions = ["a", "b", "c"]
    got = overlong_penalty(completions, completion_lengths=[6, 8, 12], max_len=10, cache_len=4)
    assert got == pytest.approx([0.0, -0.5, -1.0])


def test_overlong_penalty_counts_characters():
    got = overlong_penalty(["x" * 6, "x" * 8], max_len=10, cache_len=4, unit="chars")
    assert got == pytest.approx([0.0, -0.5])


def test_token_unit_without_lengths_fails_clearly():
    with pytest.raises(ValueError, match="completion_lengths"):
        overlong_penalty(["a"], max_len=10, cache_len=4, unit="tokens")


def test_length_penalty_is_linear_and_clipped():
    got = length_penalty(["a", "b", "c"], completion_lengths=[0, 5, 50], max_len=10)
    assert got == pytest.approx([0.0, -0.5, -1.0])


def test_bad_params_fail():
    with pytest.raises(ValueError, match="cache_len"):
        overlong_penalty([], max_len=10, cache_len=20)
    with pytest.raises(ValueError, match="unit"):
        length_penalty([], unit="words")
