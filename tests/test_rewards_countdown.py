"""`countdown_equation` case by case, including hostile inputs."""

import time

import pytest

from rlvr_jax.rewards.countdown import (
    UnsafeExpression,
    check_equation,
    countdown_equation,
    parse_expression,
)

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
