"""Endless, resumable batches of rows.

Epoch e visits the rows in the order `default_rng([seed, e]).permutation(n)` (or file
order when not shuffling); a batch that runs past the end of an epoch continues into
the next, so every batch is full. The position is a small JSON-serializable dict,

    {"epoch": 3, "index": 128, "num_rows": 7473}

saved with the checkpoint; an iterator built from it yields the next unseen batch.
With several processes, each takes its contiguous slice of the same global batch.

Every prompt source (this one, the curriculum's `PassRateSampler`, the `MixtureIterator`)
has the same surface: `next()` (this process's slice), `take(n)` (the next n rows of the
global stream, for a mixture), `state()`, and `observe(correct_PG)`, the verdicts [P, G] of
the prompts it handed out, in order (a source that does not adapt ignores them).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from rlvr_jax.tasks.base import Row


def process_slice(batch: list[Row], process_index: int, process_count: int) -> list[Row]:
    """This process's contiguous share of a global batch."""
    per_process = len(batch) // process_count
    start = process_index * per_process
    return batch[start : start + per_process]


def check_batch_split(batch_size: int, process_index: int, process_count: int) -> None:
    if batch_size < 1 or batch_size % process_count:
        raise ValueError(
            f"batch_size: {batch_size} must be positive and divisible by the "
            f"process count {process_count}"
        )
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} not in [0, {process_count})")


def epoch_order(num_rows: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """The order in which epoch `epoch` visits the rows."""
    if not shuffle:
        return np.arange(num_rows)
    return np.random.default_rng([seed, epoch]).permutation(num_rows)


class RowIterator(Iterator[list[Row]]):
    """Yields batches (lists of rows) forever; `state()` / `state=` save and resume."""

    def __init__(
        self,
        rows: Sequence[Row],
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        process_index: int = 0,
        process_count: int = 1,
        state: Mapping[str, int] | None = None,
    ) -> None:
        if not rows:
            raise ValueError("RowIterator: no rows")
        check_batch_split(batch_size, process_index, process_count)
        self._rows, self._batch_size, self._seed, self._shuffle = rows, batch_size, seed, shuffle
        self._process_index, self._process_count = process_index, process_count
        self._epoch, self._index = 0, 0
        if state is not None:
            self._restore(state)
        self._order = epoch_order(len(rows), seed, self._epoch, shuffle)

    def _restore(self, state: Mapping[str, int]) -> None:
        if int(state["num_rows"]) != len(self._rows):
            raise ValueError(
                f"data iterator state is for {state['num_rows']} rows, this dataset has "
                f"{len(self._rows)}: the data config changed since the checkpoint"
            )
        self._epoch, self._index = int(state["epoch"]), int(state["index"])
        if not 0 <= self._index < len(self._rows):
            raise ValueError(f"data iterator state index {self._index} out of range")

    def state(self) -> dict[str, int]:
        """The position of the next batch, as plain ints."""
        return {"epoch": self._epoch, "index": self._index, "num_rows": len(self._rows)}

    def take(self, n: int) -> list[Row]:
        """The next `n` rows of the global stream (every process's share)."""
        batch: list[Row] = []
        while len(batch) < n:
            take = min(n - len(batch), len(self._rows) - self._index)
            batch.extend(self._rows[i] for i in self._order[self._index : self._index + take])
            self._index += take
            if self._index == len(self._rows):
                self._epoch, self._index = self._epoch + 1, 0
                self._order = epoch_order(len(self._rows), self._seed, self._epoch, self._shuffle)
        return batch

    def observe(self, correct_PG: np.ndarray) -> None:
        """The epoch order does not depend on verdicts."""
        del correct_PG

    def __next__(self) -> list[Row]:
        return process_slice(self.take(self._batch_size), self._process_index, self._process_count)
