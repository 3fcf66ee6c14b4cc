"""`math_equivalence` (through math-verify) case by case."""

import threading

import pytest

from rlvr_jax.rewards.math_equivalence import math_equivalence

CASES = [
    # (completion, truth, strict score, lenient score)
    ("<answer>\\frac{1}{2}</answer>", "0.5", 1.0, 1.0),
    ("\\boxed{\\frac{1}{2}}", "1/2", 1.0, 1.0),
    ("<answer>2\\sqrt{2}</answer>", "\\sqrt{8}", 1.0, 0.0),
    ("<answer>\\sqrt{2}</answer>", "2", 0.0, 0.0),
    ("<answer>x^2 + 2x + 1</answer>", "(x+1)^2", 1.0, 0.0),
    ("<answer>\\pi</answer>", "\\pi", 1.0, 0.0),
    ("<answer>3.14</answer>", "\\pi", 0.0, 0.0),
    ("<answer>$18.00</answer>", "18", 1.0, 1.0),
    ("<answer>18 eggs</answer>", "18", 1.0, 1.0),
    ("<answer>\u22125</answer>", "-5", 1.0, 1.0),
    ("<answer>1,234</answer>", "1234", 1.0, 1.0),
    ("<answer>17 or 18</answer>", "17", 0.0, 0.0),  # no credit for hedging
    ("<reasoning>it is 18</reasoning><answer>no idea</answer>", "18", 0.0, 1.0),
    ("", "1", 0.0, 0.0),
]


@pytest.mark.parametrize("completion, truth, strict, lenient", CASES)
def test_math_equivalence(completion, truth, strict, lenient):
    assert math_equivalence([completion], answer=[truth]) == [strict]
    assert math_equivalence([completion], answer=[truth], mode="lenient") == [lenient]


def test_works_off_the_main_thread():
    # math-verify's signal-based timeout only works in the main thread; we disable it there.
    result = []
    thread = threading.Thread(
        target=lambda: result.extend(math_equivalence(["\\boxed{2}"], answer=["2"]))
    )
    thread.start()
    thread.join()
    assert result == [1.0]


def test_bad_params_fail():
    with pytest.raises(ValueError, match="timeout_seconds"):
        math_equivalence([], answer=[], timeout_seconds=0)
