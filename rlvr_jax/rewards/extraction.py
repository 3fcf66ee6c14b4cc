"""Answer extraction: where in a completion the final answer is, and what it says.

Two modes, shared by the rewards and by evaluation (maj@k votes over the returned
strings):

* strict: the answer must be marked. The span is, in order of precedence,
  1. the content of the last complete answer block `<answer>...</answer>` (the last
     end marker, paired with the last start marker before it; an unclosed block does
     not count, so a sampler that stops on `</answer>` must keep the stop string),
  2. else the rest of the line after the last `####` (GSM8K reference style),
  3. else the content of the last `\\boxed{...}` (balanced braces).
  The value of the span is the span itself if it is one number ("$1,234.00", "18 eggs"),
  else the last number written in it ("x = 5 + 3 = 8" gives "8"), else the span's text
  with whitespace collapsed (non-numeric answers such as "B" or "\\sqrt{2}"), else None
  when the span is empty.
* lenient: the last number written anywhere in the completion, or None.

Numbers come back in canonical form (`numbers.canonical`), so two extractions can be
compared as strings.
"""

from __future__ import annotations

from typing import Literal

from rlvr_jax.markers import DEFAULT_MARKERS, Markers
from rlvr_jax.rewards.numbers import last_number, normalize_number

ExtractionMode = Literal["strict", "lenient"]
EXTRACTION_MODES: tuple[str, ...] = ("strict", "lenient")


def check_mode(mode: str) -> None:
    """Raise a ValueError naming the `mode` param unless it is one of EXTRACTION_MODES."""
    if mode not in EXTRACTION_MODES:
        raise ValueError(f"mode: must be one of {list(EXTRACTION_MODES)}, got {mode!r}")


def last_block(text: str, start: str, end: str) -> str | None:
    """Content of the last complete `start ... end` block, or None if there is none."""
    end_at = text.rfind(end)
    if end_at < 0:
        return None
    start_at = text.rfind(start, 0, end_at)
    if start_at < 0:
        return None
    return text[start_at + len(start) : end_at]


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` with balanced braces, or None."""
    start_at = text.rfind("\\boxed{")
    if start_at < 0:
        return None
    depth, begin = 0, start_at + len("\\boxed{")
    for i in range(begin, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            if depth == 0:
                return text[begin:i]
            depth -= 1
    return None


def answer_span(text: str, markers: Markers = DEFAULT_MARKERS) -> str | None:
    """The strict answer span (stripped), by the precedence in the module docstring."""
    span = last_block(text, markers.answer_start, markers.answer_end)
    if span is None and "####" in text:
        span = text[text.rfind("####") + 4 :].split("\n", 1)[0]
    if span is None:
        span = last_boxed(text)
    return None if span is None else span.strip()


def span_value(span: str) -> str | None:
    """What a strict span says: one number, else its last number, else its text."""
    number = normalize_number(span)
    if number is not None:
        return number
    number = last_number(span)
    if number is not None:
        return number
    text = " ".join(span.split())
    return text or None


def extract_answer(
    text: str, mode: ExtractionMode = "strict", markers: Markers = DEFAULT_MARKERS
) -> str | None:
    """The final answer of a completion, by the rules of the module docstring."""
    check_mode(mode)
    if mode == "strict":
        span = answer_span(text, markers)
        return None if span is None else span_value(span)
    return last_number(text)
