"""`math_equivalence`: symbolic equivalence of LaTeX / `\\boxed{}` answers via `math-verify`.

strict: the answer span (`extraction.answer_span`: answer block, else `####`, else the
last `\\boxed{}`) is read by math-verify twice, as LaTeX wrapped in `$...$` (so bare
`2\\sqrt{2}` parses whole) and as plain text (so "18 eggs" reads as 18); it is
correct if either reading verifies. lenient: the markers are blanked out and
math-verify reads the whole completion with its own extraction (boxed answers first,
then the last expression). The ground truth is read as LaTeX first, else as text.
`\\frac{1}{2}`, `0.5` and `1/2` are equivalent; so are `2\\sqrt{2}` and `\\sqrt{8}`.

math-verify bounds parsing and verification with `signal.alarm`, which only works in
the main thread; called from another thread the timeout is disabled (it would raise).
"""

from __future__ import annotations

import functools
import threading

from rlvr_jax.markers import DEFAULT_MARKERS, Markers
from rlvr_jax.rewards.extraction import EXTRACTION_MODES, ExtractionMode, answer_span
from rlvr_jax.rewards.numbers import clean_text
from rlvr_jax.rewards.registry import register_reward


def _timeout(seconds: int) -> int | None:
    return seconds if threading.current_thread() is threading.main_thread() else None


def _readings(text: str, timeout_seconds: int, as_latex: bool) -> list[list]:
    """math-verify's non-empty readings of `text`: wrapped in `$...$` (if `as_latex`), as is."""
    from math_verify import parse  # deferred: importing sympy costs a second

    text = clean_text(text)
    texts = [f"${text}$", text] if as_latex and "$" not in text else [text]
    parsed = [parse(t, parsing_timeout=_timeout(timeout_seconds)) for t in texts]
    return [p for p in parsed if p]


@functools.lru_cache(maxsize=4096)
def _parse_truth(truth: str, timeout_seconds: int) -> list:
    readings = _readings(truth, timeout_seconds, as_latex=True)
    return readings[0] if readings else []


def _check_params(mode: str, timeout_seconds: int) -> None:
    if mode not in EXTRACTION_MODES:
        raise ValueError(f"mode: must be one of {list(EXTRACTION_MODES)}, got {mode!r}")
    if not isinstance(timeout_seconds, int) or timeout_seconds < 1:
        raise ValueError(f"timeout_seconds: a positive int, got {timeout_seconds!r}")


def is_equivalent(
    text: str, truth: str, mode: ExtractionMode, markers: Markers, timeout_seconds: int
) -> bool:
    """Whether the completion's answer is mathematically equivalent to `truth`."""
    from math_verify import verify

    if mode == "strict":
        span = answer_span(text, markers)
        readings = _readings(span, timeout_seconds, as_latex=True) if span else []
    else:
        for marker in markers.as_tuple():
            text = text.replace(marker, "\n")
        readings = _readings(text, timeout_seconds, as_latex=False)
    gold = _parse_truth(truth, timeout_seconds)
    return bool(gold) and any(
        verify(gold, reading, timeout_seconds=_timeout(timeout_seconds)) for reading in readings
    )


def math_equivalent(
    completions: list[str],
    *,
    answer: list[str],
    markers: Markers = DEFAULT_MARKERS,
    mode: ExtractionMode = "strict",
    timeout_seconds: int = 5,
    **unused: object,
) -> list[bool]:
    """One bool per completion: is its answer equivalent to the ground truth?"""
    _check_params(mode, timeout_seconds)
    return [
        is_equivalent(text, truth, mode, markers, timeout_seconds)
        for text, truth in zip(completions, answer, strict=True)
    ]


@register_reward("math_equivalence", correct=math_equivalent)
def math_equivalence(
    completions: list[str],
    *,
    answer: list[str],
    markers: Markers = DEFAULT_MARKERS,
    mode: ExtractionMode = "strict",
    timeout_seconds: int = 5,
    correct: float = 1.0,
    wrong: float = 0.0,
    **unused: object,
) -> list[float]:
    """`correct` when the answer is equivalent to `answer` (see module docstring), else `wrong`."""
    flags = math_equivalent(
        completions, answer=answer, markers=markers, mode=mode, timeout_seconds=timeout_seconds
    )
    return [float(correct if ok else wrong) for ok in flags]
