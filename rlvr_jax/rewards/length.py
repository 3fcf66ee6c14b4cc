"""Length shaping: a linear length penalty and DAPO's soft overlong punishment.

Lengths are counted in `unit`:
* "tokens": the `completion_lengths` the caller passes to the combiner (the sampler's
  token counts); missing lengths raise, which the combiner reports as a RewardError.
* "chars": `len(completion)`, needing nothing from the caller.

DAPO (Yu et al. 2025, eq. 13), with L the length, `max_len` the generation limit and
`cache_len` the soft zone:

    0                                     if L <= max_len - cache_len
    (max_len - cache_len - L) / cache_len if max_len - cache_len < L <= max_len
    -1                                    if L > max_len

so the penalty falls linearly from 0 to -1 across the last `cache_len` units.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from rlvr_jax.rewards.registry import register_reward

LengthUnit = Literal["tokens", "chars"]


def completion_length_values(
    completions: list[str], completion_lengths: Sequence[int] | None, unit: str
) -> list[int]:
    """Length of each completion in `unit` (see module docstring)."""
    if unit == "chars":
        return [len(text) for text in completions]
    if unit == "tokens":
        if completion_lengths is None:
            raise ValueError(
                "unit='tokens' needs completion_lengths from the caller; "
                "pass them to the combiner or set params.unit='chars'"
            )
        if len(completion_lengths) != len(completions):
            raise ValueError(
                f"completion_lengths has {len(completion_lengths)} entries "
                f"for {len(completions)} completions"
            )
        return [int(n) for n in completion_lengths]
    raise ValueError(f"unit: must be 'tokens' or 'chars', got {unit!r}")


def dapo_overlong(length: int, max_len: int, cache_len: int) -> float:
    """DAPO's soft overlong penalty for one length (module docstring)."""
    if length <= max_len - cache_len:
        return 0.0
    if length <= max_len:
        return (max_len - cache_len - length) / cache_len
    return -1.0


@register_reward("overlong_penalty")
def overlong_penalty(
    completions: list[str],
    *,
    completion_lengths: Sequence[int] | None = None,
    max_len: int = 512,
    cache_len: int = 128,
    unit: LengthUnit = "tokens",
    **unused: object,
) -> list[float]:
    """DAPO soft overlong punishment, in [-1, 0] (module docstring)."""
    if not 0 < cache_len <= max_len:
        raise ValueError(f"cache_len: need 0 < cache_len <= max_len, got {cache_len}, {max_len}")
    lengths = completion_length_values(completions, completion_lengths, unit)
    return [dapo_overlong(n, max_len, cache_len) for n in lengths]


@register_reward("length_penalty")
def length_penalty(
    completions: list[str],
    *,
    completion_lengths: Sequence[int] | None = None,
    max_len: int = 512,
    unit: LengthUnit = "tokens",
    **unused: object,
) -> list[float]:
    """-min(1, L / max_len): a linear penalty in [-1, 0] on every unit of length."""
    if max_len <= 0:
        raise ValueError(f"max_len: must be positive, got {max_len}")
    lengths = completion_length_values(completions, completion_lengths, unit)
    return [-min(1.0, n / max_len) for n in lengths]
