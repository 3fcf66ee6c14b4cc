"""Rows, the dataset registry, and the checks every loader shares.

A row is a plain dict. Every row has
    question: str   the problem text shown to the model
    answer: str     the ground truth, normalized (`rewards.numbers.canonical` for numbers)
and may have task fields the rewards read (countdown: `numbers: list[int]`,
`target: int`) and, for few-shot demonstrations, `demo_reasoning: str` (worked
reasoning) and `demo_answer: str` (what goes in the answer block). Rows must stay
JSON-serializable: plain str / int / float / list values.

A loader is `loader(config: DataConfig, which: "train" | "eval") -> list[Row]`; it
returns rows in a deterministic order. Shuffling and `max_samples` are applied on top
by `load_rows`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rlvr_jax.registry import Registry

if TYPE_CHECKING:
    from rlvr_jax.tasks.config import DataConfig

logger = logging.getLogger(__name__)

Row = dict[str, Any]
Which = Literal["train", "eval"]
Loader = Callable[["DataConfig", Which], list[Row]]

DATASETS: Registry[Loader] = Registry("dataset", "data.name", arity=2)
register_dataset = DATASETS.register  # @register_dataset("name"): a loader for `data.name`


def keep_valid(
    records: Iterable[Mapping[str, Any]],
    to_row: Callable[[Mapping[str, Any]], Row | None],
    source: str,
) -> list[Row]:
    """Convert records to rows, skipping those `to_row` rejects (returns None or raises).

    Skipped records are counted and reported in one warning with the first bad record.
    No row left is an error.
    """
    rows, skipped, first_bad = [], 0, None
    for record in records:
        try:
            row = to_row(record)
        except (KeyError, TypeError, ValueError):
            row = None
        if row is None:
            skipped += 1
            first_bad = record if first_bad is None else first_bad
        else:
            rows.append(row)
    if skipped:
        logger.warning(
            "%s: skipped %d of %d rows with a missing or unparseable answer; first: %.300r",
            source, skipped, skipped + len(rows), dict(first_bad),
        )  # fmt: skip
    if not rows:
        raise ValueError(f"{source}: no usable rows ({skipped} skipped for a bad answer)")
    return rows


def shuffled(rows: list[Row], seed: int) -> list[Row]:
    """A seeded permutation of `rows`, identical in every process and on every host."""
    order = np.random.default_rng([seed, 0x5EED]).permutation(len(rows))
    return [rows[i] for i in order]


def load_rows(config: DataConfig, which: Which) -> list[Row]:
    """Rows of the train or eval split of `config.name`.

    train: loader order, then shuffled by `data.seed` if `data.shuffle`, then the first
    `data.max_samples` (0 = all). eval: loader order, then the first
    `data.eval_max_samples` (0 = all), so eval sets are the same across seeds.
    """
    if which not in ("train", "eval"):
        raise ValueError(f"which: 'train' or 'eval', got {which!r}")
    if which == "eval" and not config.eval_split:
        raise ValueError("data.eval_split: empty, so this dataset has no eval split")
    rows = DATASETS.lookup(config.name)(config, which)
    if which == "train" and config.shuffle:
        rows = shuffled(rows, config.seed)
    limit = config.max_samples if which == "train" else config.eval_max_samples
    return rows[:limit] if limit else rows
