"""Curricula (`data.curriculum`): which training prompts a batch draws, by pass rate or difficulty.

Modes:
* "none": the plain epoch order (`RowIterator`).
* "pass_rate_band": each prompt keeps an exponential moving average of its pass rate
  (correct samples / G, fed back after every step through `observe`). A batch draws
  prompts without replacement with weight 1 for a prompt whose EMA is in
  [band_low, band_high] or that was never seen, and `out_of_band_weight` otherwise:
  prompts the policy always or never solves carry no GRPO signal (zero group variance),
  so the band keeps the batch where the advantages are informative.
* "difficulty_order": rows sorted by the row field `difficulty_field` (ascending, ties
  in row order), visited in that order epoch after epoch (easy to hard).

The pass-rate table is explicit state, updated by a pure function,
`update_pass_rates(rates, prompt_ids, correct_PG, ema_rate) -> rates`; the sampler's
random draws are keyed by the batch counter (`default_rng([seed, stream, batch])`), so
its whole state is the JSON dict

    {"batches": 12, "num_rows": 5000, "ema": [...], "seen": [...]}

saved with the checkpoint like `RowIterator`'s position: a resumed run draws and
updates exactly what an uninterrupted one does (floats round-trip through JSON).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rlvr_jax.tasks.base import Row
from rlvr_jax.tasks.iterator import RowIterator, check_batch_split, process_slice

if TYPE_CHECKING:
    from rlvr_jax.tasks.config import DataConfig

CURRICULUM_MODES = ("none", "pass_rate_band", "difficulty_order")
_STREAM = 0xC0C0  # separates the curriculum's draws from the other uses of data.seed


@dataclasses.dataclass(frozen=True)
class CurriculumConfig:
    """Which prompts a batch draws (`data.curriculum`); module docstring."""

    mode: str  # CURRICULUM_MODES
    band_low: float  # pass_rate_band: favour prompts whose EMA pass rate is >= band_low ...
    band_high: float  # ... and <= band_high (unseen prompts count as in band)
    ema_rate: float  # weight of a step's pass rate in the EMA, in (0, 1]
    out_of_band_weight: float  # sampling weight of an out-of-band prompt (in band: 1), (0, 1]
    difficulty_field: str  # difficulty_order: the row field sorted ascending

    def __post_init__(self) -> None:
        if self.mode not in CURRICULUM_MODES:
            raise ValueError(
                f"data.curriculum.mode: unknown {self.mode!r}; choose one of "
                f"{list(CURRICULUM_MODES)}"
            )
        if not 0.0 <= self.band_low <= self.band_high <= 1.0:
            raise ValueError(
                "data.curriculum.band_low/band_high: need 0 <= band_low <= band_high <= 1, got "
                f"[{self.band_low}, {self.band_high}]"
            )
        if not 0.0 < self.ema_rate <= 1.0:
            raise ValueError(f"data.curriculum.ema_rate: must be in (0, 1], got {self.ema_rate}")
        if not 0.0 < self.out_of_band_weight <= 1.0:
            raise ValueError(
                "data.curriculum.out_of_band_weight: must be in (0, 1], got "
                f"{self.out_of_band_weight}"
            )
        if self.mode == "difficulty_order" and not self.difficulty_field:
            raise ValueError(
                "data.curriculum.difficulty_field: mode 'difficulty_order' needs the row field "
                "to sort by"
            )


@dataclasses.dataclass(frozen=True)
class PassRates:
    """The per-prompt table: EMA pass rate and how many steps saw each prompt."""

    ema_N: np.ndarray  # float64 [N]
    seen_N: np.ndarray  # int64 [N]; 0 = never sampled (its ema is unused)

    @classmethod
    def empty(cls, num_rows: int) -> PassRates:
        return cls(np.zeros(num_rows, np.float64), np.zeros(num_rows, np.int64))


def update_pass_rates(
    rates: PassRates, prompt_ids: Sequence[int], correct_PG: np.ndarray, ema_rate: float
) -> PassRates:
    """The table after one batch: prompt `prompt_ids[p]` scored `correct_PG[p]` (G verdicts).

    A first sighting sets the EMA to the pass rate; later ones move it by `ema_rate`. A
    prompt drawn twice in one batch is updated twice, in batch order.
    """
    correct_PG = np.asarray(correct_PG, bool)
    if correct_PG.ndim != 2 or correct_PG.shape[0] != len(prompt_ids):
        raise ValueError(
            f"update_pass_rates: verdicts of shape {correct_PG.shape} for {len(prompt_ids)} prompts"
        )
    ema, seen = rates.ema_N.copy(), rates.seen_N.copy()
    for i, rate in zip(prompt_ids, correct_PG.mean(axis=1), strict=True):
        ema[i] = rate if seen[i] == 0 else (1.0 - ema_rate) * ema[i] + ema_rate * rate
        seen[i] += 1
    return PassRates(ema, seen)


def band_weights(rates: PassRates, config: CurriculumConfig) -> np.ndarray:
    """[N] sampling weights: 1 in band or unseen, `out_of_band_weight` outside."""
    in_band = (rates.seen_N == 0) | (
        (rates.ema_N >= config.band_low) & (rates.ema_N <= config.band_high)
    )
    return np.where(in_band, 1.0, config.out_of_band_weight)


class PassRateSampler:
    """`pass_rate_band` batches; `observe` feeds back each batch's verdicts, in order."""

    def __init__(
        self,
        rows: Sequence[Row],
        batch_size: int,
        seed: int,
        config: CurriculumConfig,
        process_index: int = 0,
        process_count: int = 1,
        state: Mapping[str, Any] | None = None,
    ) -> None:
        if not rows:
            raise ValueError("PassRateSampler: no rows")
        check_batch_split(batch_size, process_index, process_count)
        self._rows, self._batch_size, self._seed, self._config = rows, batch_size, seed, config
        self._process_index, self._process_count = process_index, process_count
        self._batches, self._rates = 0, PassRates.empty(len(rows))
        self._pending: list[np.ndarray] = []  # drawn, verdicts not yet observed
        if state is not None:
            self._restore(state)

    def _restore(self, state: Mapping[str, Any]) -> None:
        if int(state["num_rows"]) != len(self._rows) or len(state["ema"]) != len(self._rows):
            raise ValueError(
                f"curriculum state is for {state['num_rows']} rows, this dataset has "
                f"{len(self._rows)}: the data config changed since the checkpoint"
            )
        self._batches = int(state["batches"])
        self._rates = PassRates(
            np.asarray(state["ema"], np.float64), np.asarray(state["seen"], np.int64)
        )

    def state(self) -> dict[str, Any]:
        if self._pending:
            raise RuntimeError(
                f"PassRateSampler.state: {len(self._pending)} batch(es) drawn but not observed"
            )
        return {
            "batches": self._batches,
            "num_rows": len(self._rows),
            "ema": [float(x) for x in self._rates.ema_N],
            "seen": [int(x) for x in self._rates.seen_N],
        }

    @property
    def pass_rates(self) -> PassRates:
        return self._rates

    def take(self, n: int) -> list[Row]:
        if n == 0:
            return []
        rng = np.random.default_rng([self._seed, _STREAM, self._batches])
        weights = band_weights(self._rates, self._config)
        ids = rng.choice(
            len(self._rows), size=n, replace=n > len(self._rows), p=weights / weights.sum()
        )
        self._batches += 1
        self._pending.append(ids)
        return [self._rows[i] for i in ids]

    def observe(self, correct_PG: np.ndarray) -> None:
        if not self._pending:
            raise RuntimeError("PassRateSampler.observe: no batch is waiting for verdicts")
        ids = self._pending.pop(0)
        self._rates = update_pass_rates(self._rates, ids, correct_PG, self._config.ema_rate)

    def __iter__(self) -> PassRateSampler:
        return self

    def __next__(self) -> list[Row]:
        return process_slice(self.take(self._batch_size), self._process_index, self._process_count)


def difficulty_sorted(rows: Sequence[Row], field: str) -> list[Row]:
    """Rows by `field` ascending, ties in row order."""
    missing = [i for i, row in enumerate(rows) if field not in row]
    if missing:
        raise ValueError(
            f"data.curriculum.difficulty_field: rows lack {field!r} (row {missing[0]} has "
            f"{sorted(rows[missing[0]])})"
        )
    return sorted(rows, key=lambda row: row[field])


def make_source(
    rows: Sequence[Row],
    data: DataConfig,
    batch_size: int,
    process_index: int = 0,
    process_count: int = 1,
    state: Mapping[str, Any] | None = None,
) -> RowIterator | PassRateSampler:
    """The prompt source of `data.curriculum.mode` over `rows`, resumed from `state`."""
    curriculum = data.curriculum
    if curriculum.mode == "pass_rate_band":
        return PassRateSampler(
            rows, batch_size, data.seed, curriculum, process_index, process_count, state
        )
    shuffle = data.shuffle
    if curriculum.mode == "difficulty_order":
        rows, shuffle = difficulty_sorted(rows, curriculum.difficulty_field), False
    return RowIterator(
        rows,
        batch_size,
        data.seed,
        shuffle=shuffle,
        process_index=process_index,
        process_count=process_count,
        state=state,
    )
