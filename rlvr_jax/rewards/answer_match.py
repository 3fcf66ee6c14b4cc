"""`answer_match`: the extracted final answer against the ground truth, with optional tiers.

Both sides are normalized (`numbers.canonical`) and compared as exact rationals, so
"$1,234.00" matches "1234" and "0.75" matches "3/4". Non-numeric answers compare as
whitespace-collapsed, case-folded text. Scores are params: `correct` for a match,
then the first of `tolerance_tiers` ((relative_error_bound, score), ascending) that the
numeric relative error |pred - truth| / |truth| falls within, else `wrong`; `missing`
when nothing could be extracted. Unsloth's `check_answer` tiers are

    correct=3.0, tolerance_tiers=((0.1, 0.5), (0.2, 0.25)), wrong=-1.0, missing=0.0
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from rlvr_jax.markers import DEFAULT_MARKERS, Markers
from rlvr_jax.rewards.extraction import EXTRACTION_MODES, ExtractionMode, extract_answer
from rlvr_jax.rewards.numbers import to_fraction
from rlvr_jax.rewards.registry import register_reward


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


def _check_params(mode: str, tolerance_tiers: Sequence[Sequence[float]]) -> None:
    if mode not in EXTRACTION_MODES:
        raise ValueError(f"mode: must be one of {list(EXTRACTION_MODES)}, got {mode!r}")
    bounds = [bound for bound, _ in tolerance_tiers]
    if any(b <= 0 for b in bounds) or bounds != sorted(bounds):
        raise ValueError(
            f"tolerance_tiers: (relative_error_bound, score) pairs with positive, ascending "
            f"bounds, got {tolerance_tiers!r}"
        )


def answer_correct(
    completions: list[str],
    *,
    answer: list[str],
    markers: Markers = DEFAULT_MARKERS,
    mode: ExtractionMode = "strict",
    **unused: object,
) -> list[bool]:
    """One bool per completion: does its extracted answer equal the ground truth?"""
    _check_params(mode, ())
    return [
        answers_equal(extract_answer(text, mode, markers), truth)
        for text, truth in zip(completions, answer, strict=True)
    ]


@register_reward("answer_match", correct=answer_correct)
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
    _check_params(mode, tolerance_tiers)
    scores = []
    for text, truth in zip(completions, answer, strict=True):
        predicted = extract_answer(text, mode, markers)
        if predicted is None:
            scores.append(missing)
        elif answers_equal(predicted, truth):
            scores.append(correct)
        else:
            error = relative_error(predicted, truth) if tolerance_tiers else None
            tier_scores = [
                s for bound, s in tolerance_tiers if error is not None and error <= bound
            ]
            scores.append(tier_scores[0] if tier_scores else wrong)
    return [float(s) for s in scores]
