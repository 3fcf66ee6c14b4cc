"""Endless, resumable batches of rows.

Epoch e visits the rows in the order `default_rng([seed, e]).permutation(n)` (or file
order when not shuffling); a batch that runs past the end of an epoch continues into
the next, so every batch is full. The position is a small JSON-serializable dict,

    {"epoch": 3, "index": 128, "num_rows": 7473}

saved with the checkpoint; an iterator built from it yields the next unseen batch.
With several processes, each takes its contiguous slice of the same global batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from rlvr_jax.tasks.base import Row


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
        if batch_size < 1 or batch_size % process_count:
            raise ValueError(
                f"batch_size: {batch_size} must be positive and divisible by the "
                f"process count {process_count}"
            )
        if not 0 <= process_index < process_count:
            raise ValueError(f"process_index {process_index} not in [0, {process_count})")
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

    def __next__(self) -> list[Row]:
        batch = []
        while len(batch) < self._batch_size:
            take = min(self._batch_size - len(batch), len(self._rows) - self._index)
            batch.extend(self._rows[i] for i in self._order[self._index : self._index + take])
            self._index += take
            if self._index == len(self._rows):
                self._epoch, self._index = self._epoch + 1, 0
                self._order = epoch_order(len(self._rows), self._seed, self._epoch, self._shuffle)
        per_process = self._batch_size // self._process_count
        start = self._process_index * per_process
        return batch[start : start + per_process]
