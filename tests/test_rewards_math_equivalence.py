"""`math_equivalence` (through math-verify) case by case."""

import threading

import pytest

from rlvr_jax.markers import DEFAULT_MARKERS
from rlvr_jax.rewards.format import follows_layout
from rlvr_jax.rewards.math_equivalence import math_equivalence, math_equivalent, math_vote_key
from rlvr_jax.rewards.registry import get_verifier

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


def test_reward_maps_the_correct_verdicts():
    completions, truths = [case[0] for case in CASES], [case[1] for case in CASES]
    flags = math_equivalent(completions, answer=truths)
    assert math_equivalence(completions, answer=truths, correct=2.0) == [
        2.0 if ok else 0.0 for ok in flags
    ]


def test_verifier_answers_vote_key_and_format():
    entry, verifier = get_verifier("math_equivalence")
    assert verifier.correct is math_equivalent and verifier.format_ok is follows_layout
    completions = [
        "<reasoning>it is 18</reasoning><answer> \\frac{1}{2} </answer>",
        "so \\boxed{2\\sqrt{2}} hence 3",
        "it is 18 or 19",
        "<answer></answer>",
    ]
    kwargs = dict(answer=["x"] * 4, markers=DEFAULT_MARKERS)
    strict = verifier.answers(completions, **kwargs, mode="strict")
    assert strict == ["\\frac{1}{2}", "2\\sqrt{2}", None, None]
    lenient = verifier.answers(completions, **kwargs, mode="lenient")
    assert lenient == ["0.5", "2\\sqrt{2}", "19", None]


def test_vote_key_groups_numbers_else_text():
    assert math_vote_key("\\frac{1}{2}") == math_vote_key("0.5") == math_vote_key("$1/2$")
    assert math_vote_key("18 eggs") == math_vote_key("$18.00") == "18"
    assert math_vote_key("x^2 +  1") == math_vote_key(" x^2 + 1") == "x^2 + 1"
    assert math_vote_key("X") != math_vote_key("x")  # case kept
    assert math_vote_key(" $ $ ") is None
