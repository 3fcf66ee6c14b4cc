"""How a dataset's answer column becomes the ground truth (`data.answer_rule`).

    auto          the text after the last `####` if any; a number is normalized
                  ("1,234.0" -> "1234"); other text is kept, whitespace collapsed
    after_hashes  the text after the last `####` (a row without one is dropped)
    last_boxed    the content of the last `\\boxed{...}` (MATH solutions), LaTeX kept as
                  written for `math_equivalence`
    regex         group 1 of the last match of `data.answer_regex`
    column        the column as it is, whitespace collapsed

A number read by `auto`, `after_hashes` or `regex` is normalized, so "#### 1,080" and
"1080" agree.
"""

from __future__ import annotations

import re
from typing import Any

from rlvr_jax.rewards.extraction import last_boxed
from rlvr_jax.rewards.numbers import normalize_number

ANSWER_RULES = ("auto", "after_hashes", "last_boxed", "regex", "column")


def check_answer_rule(rule: str, regex: str) -> None:
    if rule not in ANSWER_RULES:
        raise ValueError(f"data.answer_rule: unknown {rule!r}; choose one of {ANSWER_RULES}")
    if rule == "regex":
        try:
            groups = re.compile(regex).groups
        except re.error as e:
            raise ValueError(f"data.answer_regex: {regex!r} does not compile: {e}") from e
        if groups != 1:
            raise ValueError(f"data.answer_regex: needs exactly one group, {regex!r} has {groups}")


def _tidy(text: str) -> str | None:
    number = normalize_number(text)
    if number is not None:
        return number
    return " ".join(text.split()) or None


def extract_answer(value: Any, rule: str, regex: str) -> str | None:
    """The ground truth from a raw answer value by `rule`, or None (the row is dropped)."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value)
    if rule == "auto":
        return _tidy(text.rsplit("####", 1)[1] if "####" in text else text)
    if rule == "after_hashes":
        return _tidy(text.rsplit("####", 1)[1]) if "####" in text else None
    if rule == "last_boxed":
        boxed = last_boxed(text)
        return None if boxed is None else (" ".join(boxed.split()) or None)
    if rule == "regex":
        matches = list(re.finditer(regex, text))
        return _tidy(matches[-1].group(1)) if matches else None
    if rule == "column":
        return " ".join(text.split()) or None
    raise ValueError(f"data.answer_rule: unknown {rule!r}; choose one of {ANSWER_RULES}")
