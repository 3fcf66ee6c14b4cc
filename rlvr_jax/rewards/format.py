"""Format rewards: does the completion follow the reasoning-then-answer layout?

* `format_exact` (the seed's `match_format_exactly`): `matched` when the whole
  completion is `<reasoning>R</reasoning><answer>A</answer>`, with only whitespace
  around and between the blocks, each of the four markers exactly once, and R and A
  not blank; else `unmatched`.
* `format_approx` (the seed's `match_format_approximately`): for each of the four
  markers, `once` if it appears exactly once, else `otherwise` (absent or repeated);
  the sum ranges over [4 * otherwise, 4 * once].

Both are easy to satisfy without solving anything, so keep their weights below the
correctness reward's and watch `reward/<name>/corr_with_correct`.
"""

from __future__ import annotations

import re

from rlvr_jax.markers import DEFAULT_MARKERS, Markers
from rlvr_jax.rewards.registry import register_reward


def follows_layout(text: str, markers: Markers) -> bool:
    """Whether `text` is exactly one non-blank reasoning block then one non-blank answer block."""
    if any(text.count(marker) != 1 for marker in markers.as_tuple()):
        return False
    rs, re_, as_, ae = (re.escape(m) for m in markers.as_tuple())
    match = re.fullmatch(rf"\s*{rs}(.*){re_}\s*{as_}(.*){ae}\s*", text, flags=re.DOTALL)
    return match is not None and bool(match[1].strip()) and bool(match[2].strip())


@register_reward("format_exact")
def format_exact(
    completions: list[str],
    *,
    markers: Markers = DEFAULT_MARKERS,
    matched: float = 1.0,
    unmatched: float = 0.0,
    **unused: object,
) -> list[float]:
    """`matched` for completions in the exact layout (see module docstring), else `unmatched`."""
    return [float(matched if follows_layout(text, markers) else unmatched) for text in completions]


@register_reward("format_approx")
def format_approx(
    completions: list[str],
    *,
    markers: Markers = DEFAULT_MARKERS,
    once: float = 0.5,
    otherwise: float = -0.5,
    **unused: object,
) -> list[float]:
    """Per marker: `once` if it appears exactly once, else `otherwise`; summed."""
    return [
        float(sum(once if text.count(m) == 1 else otherwise for m in markers.as_tuple()))
        for text in completions
    ]
