"""Multi-task training (`data.mixture`): named tasks, each with its data, prompt and rewards.

    data.mixture = dict(
        arithmetic=dict(weight=1.0, data=dict(name="arithmetic"), prompt=dict(), rewards=dict()),
        countdown=dict(
            weight=1.0,
            data=dict(name="countdown"),
            prompt=dict(style="reasoning"),
            rewards=dict(fns=[dict(name="countdown_equation")], correctness="countdown_equation"),
        ),
    )

Each task declares four keys: `weight` (its share of the batch, normalized over the
tasks; 0 leaves the task out, nothing of it is loaded), and `data`, `prompt`, `rewards`:
the keys of those top-level sections that differ for this task. The top-level sections
are the base every task starts from, so a task states only what is its own and
everything it reads is still declared in the config file. `data.mixture = {}` (the
default every config declares) is single-task training, exactly as before. Tasks are
taken in sorted name order (ml_collections sorts the keys of a group).

`MixtureIterator` draws the task of each of the B prompt slots of a batch i.i.d. from
the weights, with `default_rng([data.seed, stream, batch])`, then takes that many rows
from each task's own source (its epoch order or curriculum, `curriculum.make_source`),
placed in slot order. A slot is one prompt and its G samples, so a group never mixes
tasks. The draw is keyed by the batch counter, so the state is

    {"batches": 7, "tasks": {"arithmetic": <its source's state>, "countdown": ...}}

and a resumed run continues the same stream. Every process builds the same global batch
and takes its contiguous slice, as `RowIterator` does.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rlvr_jax.config_builder import ConfigError, build
from rlvr_jax.rewards.config import RewardsConfig
from rlvr_jax.tasks.base import Row
from rlvr_jax.tasks.config import DataConfig
from rlvr_jax.tasks.iterator import check_batch_split, process_slice
from rlvr_jax.tasks.prompts import PromptConfig

TASK_NAME = re.compile(r"[A-Za-z0-9_]+")
RESERVED_TASK_NAMES = ("total", "correct_frac")  # reward/<name>/... metrics of the whole batch
_STREAM = 0x4D1C  # separates the task draws from the other uses of data.seed


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One entry of `data.mixture`, as declared (module docstring)."""

    weight: float  # share of the batch (normalized over the tasks); 0 leaves the task out
    data: Mapping[str, Any]  # keys of the `data` section that differ for this task
    prompt: Mapping[str, Any]  # keys of the `prompt` section that differ
    rewards: Mapping[str, Any]  # keys of the `rewards` section that differ (fns, correctness)


@dataclasses.dataclass(frozen=True)
class Task:
    """A task with its sections resolved: what setup, rollout and evaluation use."""

    name: str  # the mixture key (metrics: reward/<name>/..., eval/<name>/...)
    weight: float  # normalized: the weights of a run's tasks sum to 1
    data: DataConfig
    prompt: PromptConfig
    rewards: RewardsConfig


def _merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _plain(section: Any) -> dict[str, Any]:
    """A built section as the mapping it was built from."""
    return dataclasses.asdict(section)


def resolve_tasks(
    data: DataConfig, prompt: PromptConfig, rewards: RewardsConfig
) -> tuple[Task, ...]:
    """The run's tasks: one named `data.name` (weight 1) without a mixture, else the mixture's
    tasks of positive weight, in name order. Errors name the dotted key."""
    if not data.mixture:
        return (Task(data.name, 1.0, data, prompt, rewards),)
    specs = {}
    for name in sorted(data.mixture):
        key = f"data.mixture.{name}"
        if not TASK_NAME.fullmatch(name) or name in RESERVED_TASK_NAMES:
            raise ConfigError(
                f"{key}: a task name is letters, digits and '_', not one of {RESERVED_TASK_NAMES}"
            )
        spec = build(TaskSpec, data.mixture[name], key)
        weight = spec.weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
            raise ConfigError(f"{key}.weight: a number >= 0, got {weight!r}")
        if not math.isfinite(weight):
            raise ConfigError(f"{key}.weight: must be finite, got {weight}")
        if "mixture" in spec.data:
            raise ConfigError(f"{key}.data.mixture: a task cannot hold a mixture")
        if weight > 0:
            specs[name] = spec
    if not specs:
        raise ConfigError("data.mixture: every task has weight 0; give one a positive weight")
    total = sum(spec.weight for spec in specs.values())
    base_data = {**_plain(data), "mixture": {}}
    tasks = []
    for name, spec in specs.items():
        key = f"data.mixture.{name}"
        tasks.append(
            Task(
                name=name,
                weight=float(spec.weight) / total,
                data=build(DataConfig, _merged(base_data, spec.data), f"{key}.data"),
                prompt=build(PromptConfig, _merged(_plain(prompt), spec.prompt), f"{key}.prompt"),
                rewards=build(
                    RewardsConfig, _merged(_plain(rewards), spec.rewards), f"{key}.rewards"
                ),
            )
        )
    return tuple(tasks)


def draw_tasks(seed: int, batch: int, weights: Sequence[float], batch_size: int) -> np.ndarray:
    """[B] int: the task of each prompt slot of batch number `batch`."""
    rng = np.random.default_rng([seed, _STREAM, batch])
    return rng.choice(len(weights), size=batch_size, p=np.asarray(weights, np.float64))


class MixtureIterator:
    """Batches whose slots follow the task weights (module docstring); resumable."""

    def __init__(
        self,
        sources: Mapping[str, Any],
        weights: Sequence[float],
        batch_size: int,
        seed: int,
        process_index: int = 0,
        process_count: int = 1,
        batches: int = 0,
    ) -> None:
        check_batch_split(batch_size, process_index, process_count)
        if len(sources) != len(weights):
            raise ValueError(f"MixtureIterator: {len(sources)} sources, {len(weights)} weights")
        self._names, self._sources = list(sources), list(sources.values())
        self._weights = np.asarray(weights, np.float64) / float(np.sum(weights))
        self._batch_size, self._seed, self._batches = batch_size, seed, batches
        self._process_index, self._process_count = process_index, process_count
        self._pending: list[np.ndarray] = []  # task of each slot of batches not yet observed

    def state(self) -> dict[str, Any]:
        if self._pending:
            raise RuntimeError(
                f"MixtureIterator.state: {len(self._pending)} batch(es) drawn but not observed"
            )
        return {
            "batches": self._batches,
            "tasks": {
                name: src.state() for name, src in zip(self._names, self._sources, strict=True)
            },
        }

    def take(self, n: int) -> list[Row]:
        task_B = draw_tasks(self._seed, self._batches, self._weights, n)
        self._batches += 1
        taken = [iter(src.take(int(np.sum(task_B == t)))) for t, src in enumerate(self._sources)]
        self._pending.append(task_B)
        return [next(taken[t]) for t in task_B]

    def observe(self, correct_PG: np.ndarray) -> None:
        """Verdicts of the oldest unobserved batch, routed to each task's source."""
        if not self._pending:
            raise RuntimeError("MixtureIterator.observe: no batch is waiting for verdicts")
        task_B = self._pending.pop(0)
        correct_PG = np.asarray(correct_PG)
        for t, src in enumerate(self._sources):
            if np.any(task_B == t):
                src.observe(correct_PG[task_B == t])

    def __iter__(self) -> MixtureIterator:
        return self

    def __next__(self) -> list[Row]:
        return process_slice(self.take(self._batch_size), self._process_index, self._process_count)


def mixture_state_tasks(state: Mapping[str, Any] | None, names: Sequence[str]) -> dict:
    """Each task's source state from a `MixtureIterator.state()` (None: a fresh start)."""
    if state is None:
        return dict.fromkeys(names)
    saved = sorted(state["tasks"])
    if saved != sorted(names):
        raise ValueError(
            f"data iterator state holds tasks {saved}, this run has {sorted(names)}: the "
            "data config changed since the checkpoint"
        )
    return {name: state["tasks"][name] for name in names}
