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

Evaluation (`MATH_EQUIVALENCE_VERIFIER`): the proposed answer (`math_answers`) is, in
strict mode, the answer span itself; in lenient mode, with the markers blanked out,
the content of the last `\\boxed{}`, else the last number (canonical form), else None.
It is what a reader sees, not math-verify's parse. maj@k groups answers by
`math_vote_key`: the canonical number if the answer is one number ("$18.00$", "18"
and "18 eggs" agree; so do "\\frac{1}{2}" and "0.5"), else the whitespace-collapsed
text, case kept. Equivalent non-numeric forms ("2\\sqrt{2}", "\\sqrt{8}") vote apart.
"""

from __future__ import annotations

import functools
import threading

from rlvr_jax.markers import DEFAULT_MARKERS, Markers
from rlvr_jax.rewards.extraction import ExtractionMode, answer_span, check_mode, last_boxed
from rlvr_jax.rewards.format import follows_layout
from rlvr_jax.rewards.numbers import clean_text, last_number, normalize_number
from rlvr_jax.rewards.registry import Verifier, register_reward


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
    check_mode(mode)
    if not isinstance(timeout_seconds, int) or timeout_seconds < 1:
        raise ValueError(f"timeout_seconds: a positive int, got {timeout_seconds!r}")


def _blank_markers(text: str, markers: Markers) -> str:
    for marker in markers.as_tuple():
        text = text.replace(marker, "\n")
    return text


def is_equivalent(
    text: str, truth: str, mode: ExtractionMode, markers: Markers, timeout_seconds: int
) -> bool:
    """Whether the completion's answer is mathematically equivalent to `truth`."""
    from math_verify import verify

    if mode == "strict":
        span = answer_span(text, markers)
        readings = _readings(span, timeout_seconds, as_latex=True) if span else []
    else:
        readings = _readings(_blank_markers(text, markers), timeout_seconds, as_latex=False)
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


def math_answers(
    completions: list[str],
    *,
    answer: list[str],
    markers: Markers = DEFAULT_MARKERS,
    mode: ExtractionMode = "strict",
    **unused: object,
) -> list[str | None]:
    """The answer each completion proposes, as shown in eval records (module docstring)."""
    check_mode(mode)
    answers = []
    for text in completions:
        if mode == "strict":
            proposed = answer_span(text, markers)
        else:
            text = _blank_markers(text, markers)
            proposed = last_boxed(text)
            if proposed is None or not proposed.strip():
                proposed = last_number(text)
        answers.append(None if proposed is None or not proposed.strip() else proposed.strip())
    return answers


def math_vote_key(answer: str) -> str | None:
    """maj@k key: `$` delimiters dropped, then the canonical number, else the text with
    whitespace collapsed (case kept: `x` and `X` differ in math); None when blank."""
    text = answer.strip().strip("$").strip()
    number = normalize_number(text)
    if number is not None:
        return number
    return " ".join(text.split()) or None


MATH_EQUIVALENCE_VERIFIER = Verifier(
    correct=math_equivalent,
    answers=math_answers,
    vote_key=math_vote_key,
    format_ok=follows_layout,
)


@register_reward("math_equivalence", verifier=MATH_EQUIVALENCE_VERIFIER)
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
