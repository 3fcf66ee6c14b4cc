"""Seeded generation of distinct synthetic instances, with a held-out eval split.

Each instance has a canonical key (e.g. "23+45"). A key belongs to the held-out split
when its CRC32 falls in the lowest `holdout_fraction` of the 32-bit range, a rule that
depends on the key alone, so train and eval can never share an instance, whatever the
seed or sizes. Train instances are drawn from `numpy.random.default_rng([seed, 1])`;
eval instances from a fixed stream that does not depend on `data.seed`, so runs with
different seeds are evaluated on the same problems. No Python `hash()` is involved,
so every process generates the same instances.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from rlvr_jax.tasks.base import Row, Which

EVAL_STREAM = 0xE7A1  # seed of the eval stream
Maker = Callable[[np.random.Generator], "tuple[str, Row] | None"]


def in_holdout(key: str, fraction: float) -> bool:
    """Whether the instance with this key is reserved for the eval split."""
    return zlib.crc32(key.encode()) < fraction * 2**32


def generate_split(
    make: Maker, which: Which, count: int, holdout_fraction: float, seed: int, config_key: str
) -> list[Row]:
    """`count` distinct instances of one split; `make(rng)` returns (key, row) or None."""
    rng = np.random.default_rng([seed, 1] if which == "train" else [EVAL_STREAM])
    want_holdout = which == "eval"
    rows: list[Row] = []
    seen: set[str] = set()
    max_draws = 200 * count + 10_000
    for _ in range(max_draws):
        if len(rows) == count:
            return rows
        made = make(rng)
        if made is None:
            continue
        key, row = made
        if key in seen or in_holdout(key, holdout_fraction) != want_holdout:
            continue
        seen.add(key)
        rows.append(row)
    if len(rows) == count:
        return rows
    size = "num_train" if which == "train" else "num_eval"
    raise ValueError(
        f"{config_key}.{size}: found only {len(rows)} distinct {which} instances in "
        f"{max_draws} draws; lower {size}, widen the ranges, or change holdout_fraction"
    )
