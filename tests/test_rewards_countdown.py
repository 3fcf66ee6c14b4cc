"""`countdown_equation` case by case, including hostile inputs."""

import time

import pytest

from rlvr_jax.markers import DEFAULT_MARKERS
from rlvr_jax.rewards.countdown import (
    UnsafeExpression,
    check_equation,
    countdown_equation,
    countdown_verdicts,
    countdown_vote_key,
    parse_expression,
)
from rlvr_jax.rewards.format import follows_layout
from rlvr_jax.rewards.registry import get_verifier

NUMBERS, TARGET = [25, 5, 4], 80

CASES = [
    # (completion, verdict)
    ("<answer>(25 - 5) * 4</answer>", "correct"),
    ("<answer>(25 - 5) * 4 = 80</answer>", "correct"),
    ("<answer> (25-5)*4. </answer>", "correct"),
    ("<answer>(25 \u2212 5) \u00d7 4</answer>", "correct"),  # unicode minus and times
    ("<answer>(25 - 5) \\times 4</answer>", "correct"),
    ("<answer>4 * (25 - 5)</answer>", "correct"),
    ("<answer>25 * 4 - 5 * 4</answer>", "wrong"),  # 4 used twice
    ("<answer>(25 - 5) * 4 * 1</answer>", "wrong"),  # 1 was not given
    ("<answer>25 * 4</answer>", "wrong"),  # 100, not 80
    ("<answer>20 * 4</answer>", "wrong"),  # 20 was not given
    ("<answer>(25 - 5) * 4</answer><answer>25 * 4</answer>", "wrong"),  # last block counts
    ("<answer>__import__('os').system('true')</answer>", "invalid"),
    ("<answer>2**99999</answer>", "invalid"),
    ("<answer>25 // 5 * 4</answer>", "invalid"),  # floor division is not allowed
    ("<answer>-5 + 85</answer>", "invalid"),  # unary minus is not allowed
    ("<answer>(25 - 5) * 4.0</answer>", "invalid"),  # float literal
    ("<answer>(25 - 5) * 4 )</answer>", "invalid"),  # syntax error
    ("<answer>[25, 5, 4]</answer>", "invalid"),
    ("<answer>eighty</answer>", "invalid"),
    ("", "invalid"),
    ("(25 - 5) * 4", "invalid"),  # strict needs the answer block
]


@pytest.mark.parametrize("completion, verdict", CASES)
def test_countdown_equation(completion, verdict):
    scores = {"correct": 1.0, "wrong": 0.1, "invalid": 0.0}
    got = countdown_equation(
        [completion], numbers=[NUMBERS], target=[TARGET], wrong=0.1, invalid=0.0
    )
    assert got == [scores[verdict]]


@pytest.mark.parametrize("use_all", [False, True])
def test_verdicts_give_both_the_score_and_the_bool(use_all):
    entry, verifier = get_verifier("countdown_equation")
    completions = [completion for completion, _ in CASES]
    n = len(completions)
    kwargs = dict(numbers=[NUMBERS] * n, target=[TARGET] * n, markers=DEFAULT_MARKERS)
    kwargs.update(mode="strict", use_all=use_all, correct=2.0, wrong=0.1, invalid=-1.0)
    verdicts = countdown_verdicts(
        completions, kwargs["numbers"], kwargs["target"], markers=DEFAULT_MARKERS,
        mode="strict", use_all=use_all,
    )  # fmt: skip
    assert verdicts == [verdict for _, verdict in CASES]
    scores, correct = entry.fn(completions, **kwargs), verifier.correct(completions, **kwargs)
    assert any(correct) and not all(correct)
    assert [score == 2.0 for score in scores] == correct == [v == "correct" for v in verdicts]


def test_vote_key_is_the_exact_value():
    assert countdown_vote_key("(25 - 5) * 4") == countdown_vote_key("4 * 20") == "80"
    assert countdown_vote_key("(25 \u2212 5) \u00d7 4 = 80") == "80"  # normalized like the reward
    assert countdown_vote_key("5 / 2") == countdown_vote_key("10 / 4") == "5/2"
    assert countdown_vote_key("25 * 4") != countdown_vote_key("4 * 20")
    for invalid in ["__import__('os')", "2**99999", "4 / (5 - 5)", "eighty", ""]:
        assert countdown_vote_key(invalid) is None


def test_verifier_answers_are_the_candidate_expressions():
    _, verifier = get_verifier("countdown_equation")
    completions = [
        "<answer> (25 - 5) * 4 = 80 </answer>",
        "Try 25 + 5 = 30, no. Then (25 - 5) * 4 = 80 works.",
        "<answer>  </answer>",
        "no equation here",
    ]
    kwargs = dict(numbers=[NUMBERS] * 4, target=[TARGET] * 4)
    assert verifier.answers(completions, **kwargs, mode="strict") == [
        "(25 - 5) * 4 = 80",
        None,
        None,
        None,
    ]
    lenient = verifier.answers(completions, **kwargs, mode="lenient")
    assert lenient == ["(25 - 5) * 4", "(25 - 5) * 4", None, None]
    assert {verifier.vote_key(a) for a in lenient if a is not None} == {"80"}
    assert verifier.format_ok is follows_layout


def test_division_is_exact_and_by_zero_is_wrong():
    assert check_equation("(5 + 4) / 3 * 2", [5, 4, 3, 2], 6) == "correct"
    assert check_equation("5 / 2 * 4", [5, 2, 4], 10) == "correct"  # 2.5 * 4, no rounding
    assert check_equation("4 / (5 - 5)", [4, 5, 5], 1) == "wrong"


def test_use_all_requires_every_number():
    completion = ["<answer>(25 - 5) * 4</answer>"]
    kwargs = dict(numbers=[[25, 5, 4, 3]], target=[80])
    assert countdown_equation(completion, **kwargs) == [1.0]
    assert countdown_equation(completion, **kwargs, use_all=True) == [0.0]


def test_lenient_reads_the_last_arithmetic_run():
    text = "Try 25 + 5 = 30, no. Then (25 - 5) * 4 = 80 works."
    assert countdown_equation([text], numbers=[NUMBERS], target=[TARGET], mode="lenient") == [1.0]


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os')",
        "2**99999",
        "9**9**9**9",
        "(" * 5000 + "1" + ")" * 5000,
        "9" * 100_000,
        "1" + "*1" * 10_000,
        "lambda: 1",
        "().__class__",
    ],
)
def test_hostile_expressions_are_rejected_fast(expression):
    start = time.perf_counter()
    with pytest.raises(UnsafeExpression):
        parse_expression(expression)
    assert check_equation(expression, [2, 9], 4) == "invalid"
    assert time.perf_counter() - start < 0.1
