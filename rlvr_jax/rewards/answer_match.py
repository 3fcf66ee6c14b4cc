"""`answer_match`: the extracted final answer against the ground truth, with optional tiers.

Both sides are normalized (`numbers.canonical`) and compared as exact rationals, so
"$1,234.00" matches "1234" and "0.75" matches "3/4". Non-numeric answers compare as
whitespace-collapsed, case-folded text. Scores are params: `correct` for a match,
then the first of `tolerance_tiers` ((relative_error_bound, score), ascending) that the
numeric relative error |pred - truth| / |truth| falls within, else `wrong`; `missing`
when nothing could be extracted. Unsloth's `check_answer` tiers are

    correct=3.0, tolerance_tiers=((0.1, 0.5), (0.2, 0.25)), wrong=-1.0, missing=0.0

One verdict per completion (`answer_verdicts`) decides both the score and the
verifier's bool (`answer_correct`: the verdict is "correct"). For evaluation the
verifier proposes `extract_answer`'s string and maj@k groups them by `vote_key`, the
same equality `answers_equal` uses, so every answer of a vote group gets one verdict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from fractions import Fraction
from typing import Literal

from rlvr_jax.markers import DEFAULT_MARKERS, Markers
from rlvr_jax.rewards.extraction import ExtractionMode, check_mode, extract_answer
from rlvr_jax.rewards.format import follows_layout
from rlvr_jax.rewards.numbers import normalize_number, to_fraction
from rlvr_jax.rewards.registry import Verifier, register_reward

Outcome = Literal["correct", "close", "wrong", "missing"]


@dataclasses.dataclass(frozen=True)
class AnswerVerdict:
    """How one completion's answer compares with the truth.

    outcome: "correct" (equal), "close" (not equal, but within tolerance tier `tier`),
    "wrong" (neither), "missing" (nothing extracted). `tier` indexes `tolerance_tiers`
    and is set only for "close".
    """

    outcome: Outcome
    tier: int | None = None


def answers_equal(predicted: str | None, truth: str) -> bool:
    """Whether an extracted answer equals the ground truth (numerically, else as text)."""
    if predicted is None:
        return False
    pred_value, truth_value = to_fraction(predicted), to_fraction(truth)
    if pred_value is not None and truth_value is not None:
        return pred_value == truth_value
    return " ".join(predicted.split()).casefold() == " ".join(truth.split()).casefold()


def relative_error(predicted: str, truth: str) -> Fraction | None:
    """|pred - truth| / |truth| for two numbers, None if either is not a number or truth is 0."""
    pred_value, truth_value = to_fraction(predicted), to_fraction(truth)
    if pred_value is None or truth_value is None or truth_value == 0:
        return None
    return abs(pred_value - truth_value) / abs(truth_value)


def vote_key(answer: str) -> str | None:
    """maj@k key: canonical number, else whitespace-collapsed casefold; None when blank."""
    number = normalize_number(answer)
    if number is not None:
        return number
    return " ".join(answer.split()).casefold() or None


def _check_tiers(tolerance_tiers: Sequence[Sequence[float]]) -> None:
    bounds = [bound for bound, _ in tolerance_tiers]
    if any(b <= 0 for b in bounds) or bounds != sorted(bounds):
        raise ValueError(
            f"tolerance_tiers: (relative_error_bound, score) pairs with positive, ascending "
            f"bounds, got {tolerance_tiers!r}"
        )


def answer_verdicts(
    completions: Sequence[str],
    answer: Sequence[str],
    *,
    markers: Markers,
    mode: ExtractionMode,
    tolerance_tiers: Sequence[Sequence[float]] = (),
) -> list[AnswerVerdict]:
    """The verdict on each completion's extracted answer (see `AnswerVerdict`)."""
    check_mode(mode)
    _check_tiers(tolerance_tiers)
    verdicts = []
    for text, truth in zip(completions, answer, strict=True):
        predicted = extract_answer(text, mode, markers)
        if predicted is None:
            verdicts.append(AnswerVerdict("missing"))
        elif answers_equal(predicted, truth):
            verdicts.append(AnswerVerdict("correct"))
        else:
            error = relative_error(predicted, truth) if tolerance_tiers else None
            within = [] if error is None else [error <= bound for bound, _ in tolerance_tiers]
            if any(within):
                verdicts.append(AnswerVerdict("close", tier=within.index(True)))
            else:
                verdicts.append(AnswerVerdict("wrong"))
    return verdicts


def extracted_answers(
    completions: list[str],
    *,
    answer: list[str],
    markers: Markers = DEFAULT_MARKERS,
    mode: ExtractionMode = "strict",
    **unused: object,
) -> list[str | None]:
    """The answer each completion proposes: `extract_answer` in `mode`."""
    check_mode(mode)
    return [extract_answer(text, mode, markers) for text in completions]


def answer_correct(
    completions: list[str],
    *,
    answer: list[str],
    markers: Markers = DEFAULT_MARKERS,
    mode: ExtractionMode = "strict",
    **unused: object,
) -> list[bool]:
    """One bool per completion: does its extracted answer equal the ground truth?"""
    verdicts = answer_verdicts(completions, answer, markers=markers, mode=mode)
    return [verdict.outcome == "correct" for verdict in verdicts]


ANSWER_MATCH_VERIFIER = Verifier(
    correct=answer_correct,
    answers=extracted_answers,
    vote_key=vote_key,
    format_ok=follows_layout,
)


@register_reward("answer_match", verifier=ANSWER_MATCH_VERIFIER)
def answer_match(
    completions: list[str],
    *,
    answer: list[str],
    markers: Markers = DEFAULT_MARKERS,
    mode: ExtractionMode = "strict",
    correct: float = 1.0,
    wrong: float = 0.0,
    missing: float = 0.0,
    tolerance_tiers: Sequence[Sequence[float]] = (),
    **unused: object,
) -> list[float]:
    """Score each completion's final answer against `answer` (see module docstring)."""
    scores = {"correct": correct, "wrong": wrong, "missing": missing}
    verdicts = answer_verdicts(
        completions, answer, markers=markers, mode=mode, tolerance_tiers=tolerance_tiers
    )
    return [
        float(tolerance_tiers[v.tier][1] if v.tier is not None else scores[v.outcome])
        for v in verdicts
    ]
