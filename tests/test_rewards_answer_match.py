"""`answer_match` case by case, and every GSM8K reference solution through it."""

import json
from fractions import Fraction
from pathlib import Path

import pytest

from rlvr_jax.markers import DEFAULT_MARKERS, THINK_MARKERS
from rlvr_jax.rewards.answer_match import (
    AnswerVerdict,
    answer_correct,
    answer_match,
    answer_verdicts,
    vote_key,
)
from rlvr_jax.rewards.format import follows_layout
from rlvr_jax.rewards.numbers import canonical, to_fraction
from rlvr_jax.rewards.registry import get_verifier
from rlvr_jax.tasks.gsm8k import parse_gsm8k_answer

GSM8K_DIR = Path(__file__).parents[2] / "shared" / "data" / "gsm8k"

STRICT_CASES = [
    # (completion, truth, score with correct=1 / wrong=0 / missing=0)
    ("<answer>18</answer>", "18", 1.0),
    ("<answer>$18.00</answer>", "18", 1.0),
    ("<answer>18 eggs</answer>", "18", 1.0),
    ("<answer>18.</answer>", "18", 1.0),
    ("<answer>The answer is 1,234.</answer>", "1234", 1.0),
    ("<answer>\u22125</answer>", "-5", 1.0),
    ("<answer>-5</answer>", "5", 0.0),
    ("<answer>3/4</answer>", "0.75", 1.0),
    ("<answer>0.75</answer>", "3/4", 1.0),  # an unnormalized truth still compares exactly
    ("<answer>\\frac{3}{4}</answer>", "0.75", 1.0),
    ("<answer>18%</answer>", "18", 1.0),
    ("<answer>-$5</answer>", "-5", 1.0),
    ("<answer>18.5</answer>", "18", 0.0),
    ("<answer>180</answer>", "18", 0.0),
    ("<answer>twelve</answer>", "12", 0.0),
    ("<answer>x = 12</answer>", "12", 1.0),
    ("<reasoning>It is 18.</reasoning><answer>unsure</answer>", "18", 0.0),
    ("<answer>17</answer><answer>18</answer>", "18", 1.0),
    ("<answer>17</answer><answer>18</answer>", "17", 0.0),
    ("", "18", 0.0),
    ("The answer is 18", "18", 0.0),
    ("<answer>18", "18", 0.0),
    ("#### 1,080", "1080", 1.0),
    ("\\boxed{18}", "18", 1.0),
    ("<answer>B</answer>", "b", 1.0),  # text answers compare case-folded
]


@pytest.mark.parametrize("completion, truth, score", STRICT_CASES)
def test_answer_match_strict(completion, truth, score):
    assert answer_match([completion], answer=[truth]) == [score]
    assert answer_correct([completion], answer=[truth]) == [score == 1.0]


@pytest.mark.parametrize(
    "completion, truth, score",
    [
        ("The answer is 18", "18", 1.0),
        ("<reasoning>It is 18.</reasoning><answer>unsure</answer>", "18", 1.0),
        ("It costs 18 dollars per 2 days", "18", 0.0),  # lenient reads the last number
        ("Answer: \u22125.", "-5", 1.0),
        ("", "18", 0.0),
    ],
)
def test_answer_match_lenient(completion, truth, score):
    assert answer_match([completion], answer=[truth], mode="lenient") == [score]


def test_tolerance_tiers_unsloth_style():
    params = dict(correct=3.0, tolerance_tiers=((0.1, 0.5), (0.2, 0.25)), wrong=-1.0, missing=0.0)
    completions = [f"<answer>{x}</answer>" for x in ("18", "19", "21", "30", "abc")] + [""]
    assert answer_match(completions, answer=["18"] * 6, **params) == [3.0, 0.5, 0.25, -1, -1, 0]
    # A zero truth has no relative error: only exact matches score.
    assert answer_match(["<answer>0.1</answer>"], answer=["0"], **params) == [-1.0]


def test_bad_params_fail():
    with pytest.raises(ValueError, match="mode"):
        answer_match([], answer=[], mode="strct")
    with pytest.raises(ValueError, match="tolerance_tiers"):
        answer_match([], answer=[], tolerance_tiers=((0.2, 0.5), (0.1, 0.25)))


def test_verdicts_carry_the_tolerance_tier():
    completions = [f"<answer>{x}</answer>" for x in ("18", "19", "21", "30", "abc")] + [""]
    verdicts = answer_verdicts(
        completions,
        ["18"] * 6,
        markers=DEFAULT_MARKERS,
        mode="strict",
        tolerance_tiers=((0.1, 0.5), (0.2, 0.25)),
    )
    assert verdicts == [
        AnswerVerdict("correct"),
        AnswerVerdict("close", tier=0),
        AnswerVerdict("close", tier=1),
        AnswerVerdict("wrong"),
        AnswerVerdict("wrong"),
        AnswerVerdict("missing"),
    ]


def test_vote_key_groups_equal_numbers_and_case_folded_text():
    assert vote_key("$18.00") == vote_key("18") == "18"
    assert vote_key("3/4") == vote_key("0.75")
    assert vote_key("  Option   B ") == vote_key("option b")
    assert vote_key("18") != vote_key("180")
    assert vote_key("   ") is None


def test_verifier_declares_answers_vote_key_and_format():
    _, verifier = get_verifier("answer_match")
    completions = ["<answer>$18.00</answer>", "It is 7, no, 9", "<answer>B</answer>", ""]
    answer = ["18"] * 4
    assert verifier.answers(completions, answer=answer, mode="strict") == ["18", None, "B", None]
    assert verifier.answers(completions, answer=answer, mode="lenient") == ["18", "9", None, None]
    assert verifier.vote_key is vote_key and verifier.format_ok is follows_layout
    text = "<think>so</think><answer>5</answer>"
    assert verifier.answers([text], answer=["5"], markers=THINK_MARKERS, mode="strict") == ["5"]


@pytest.mark.parametrize("mode", ["strict", "lenient"])
def test_verifier_correct_agrees_with_the_reward(mode):
    entry, verifier = get_verifier("answer_match")
    params = dict(correct=3.0, tolerance_tiers=((0.1, 0.5), (0.2, 0.25)), wrong=-1.0, missing=0.0)
    completions = [case[0] for case in STRICT_CASES] + ["It is 19", "<answer>21</answer>"]
    truths = [case[1] for case in STRICT_CASES] + ["18", "18"]
    kwargs = dict(answer=truths, markers=DEFAULT_MARKERS, mode=mode, **params)
    scores = entry.fn(completions, **kwargs)
    correct = verifier.correct(completions, **kwargs)
    assert any(correct) and not all(correct)
    assert [score == 3.0 for score in scores] == correct


def _gsm8k_test_records() -> list[dict]:
    with open(GSM8K_DIR / "test.jsonl") as f:
        return [json.loads(line) for line in f]


def test_every_gsm8k_reference_solution_scores_correct():
    records = _gsm8k_test_records()
    assert len(records) == 1319
    completions = [r["answer"] for r in records]
    truths = [parse_gsm8k_answer(r["answer"]) for r in records]
    assert sum(answer_correct(completions, answer=truths)) == 1319
    assert sum(answer_match(completions, answer=truths)) == 1319


def test_every_gsm8k_solution_with_its_answer_plus_one_scores_wrong():
    records = _gsm8k_test_records()
    truths = [parse_gsm8k_answer(r["answer"]) for r in records]
    completions = []
    for record, truth in zip(records, truths, strict=True):
        body = record["answer"].rsplit("####", 1)[0]
        completions.append(f"{body}#### {canonical(to_fraction(truth) + Fraction(1))}")
    assert sum(answer_correct(completions, answer=truths)) == 0
    assert sum(answer_match(completions, answer=truths)) == 0
