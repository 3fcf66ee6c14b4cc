"""Score a batch of completions with the configured reward mix.

    reward_set = build_rewards(config.rewards, markers)
    out = score_completions(reward_set, completions, rows_to_fields(rows, repeat=G),
                            completion_lengths=lengths)
    out.per_fn["answer_match"]  # [N] float32, for logging
    out.total                   # [N] float32, sum_i weight_i * per_fn_i: the RL reward
    out.correct                 # [N] bool, from the `rewards.correctness` verifier

A reward that raises stops the run with a `RewardError` naming the reward and the
offending completion; with `rewards.on_error='zero'` the failing completions score 0
for that reward instead (one warning per call). A non-finite score counts as raising.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from rlvr_jax.markers import Markers
from rlvr_jax.rewards.config import RewardsConfig
from rlvr_jax.rewards.registry import (
    RewardEntry,
    RewardError,
    field_names,
    get_reward,
    get_verifier,
    param_names,
)

logger = logging.getLogger(__name__)
_SHOW_CHARS = 500  # how much of an offending completion an error message quotes


@dataclasses.dataclass(frozen=True)
class BoundReward:
    """A reward function with its params and markers bound, ready to call on a batch."""

    label: str
    weight: float
    fn: Callable[..., Sequence[Any]]
    fields: tuple[str, ...]  # row fields it needs
    shadowed: frozenset[str]  # row fields never passed: they would override params


@dataclasses.dataclass(frozen=True)
class RewardSet:
    rewards: tuple[BoundReward, ...]
    correctness: BoundReward  # returns bools; weight unused
    on_error: str


@dataclasses.dataclass(frozen=True)
class RewardOutput:
    per_fn: dict[str, np.ndarray]  # label -> [N] float32, unweighted
    total: np.ndarray  # [N] float32, weighted sum
    correct: np.ndarray  # [N] bool
    task: np.ndarray  # [N] int32: the row's task, an index into the run's tasks (0 for one)


def _bound(
    label: str, weight: float, entry: RewardEntry, fn: Callable, params: Mapping, markers: Markers
) -> BoundReward:
    """Bind `fn` (the entry's reward, or its verifier's `correct`) to params and markers.

    Row fields are those `fn` declares; the names of both the reward's params and
    `fn`'s are never passed as row fields, so a row cannot override a param.
    """
    return BoundReward(
        label=label,
        weight=weight,
        fn=functools.partial(fn, **{"markers": markers, **params}),
        fields=field_names(fn),
        shadowed=frozenset(entry.param_names()) | frozenset(param_names(fn)) | {"markers"},
    )


def build_rewards(config: RewardsConfig, markers: Markers) -> RewardSet:
    """Bind every configured reward (and the correctness verifier) to its params and markers."""
    rewards = []
    for spec in config.fns:
        entry = get_reward(spec.name)
        label, weight = spec.display_name, float(spec.weight)
        rewards.append(_bound(label, weight, entry, entry.fn, spec.params, markers))
    entry, verifier = get_verifier(config.correctness)
    label = f"{config.correctness}(correct)"
    params = config.correctness_params()
    correctness = _bound(label, 0.0, entry, verifier.correct, params, markers)
    return RewardSet(rewards=tuple(rewards), correctness=correctness, on_error=config.on_error)


def rows_to_fields(rows: Sequence[Mapping[str, Any]], repeat: int = 1) -> dict[str, list]:
    """Transpose rows into batched fields, each row repeated `repeat` times (the G samples).

    Only keys present in every row become fields.
    """
    if not rows:
        return {}
    keys = set.intersection(*(set(row) for row in rows))
    return {key: [row[key] for row in rows for _ in range(repeat)] for key in sorted(keys)}


def _checked_call(bound: BoundReward, completions: list[str], kwargs: dict) -> list[float]:
    values = list(bound.fn(completions, **kwargs))
    if len(values) != len(completions):
        raise ValueError(f"returned {len(values)} values for {len(completions)} completions")
    for value in values:
        if isinstance(value, (bool, np.bool_)):
            continue
        if not math.isfinite(value):
            raise ValueError(f"returned a non-finite value {value!r}")
    return values


def _quote(text: str) -> str:
    return repr(text if len(text) <= _SHOW_CHARS else text[:_SHOW_CHARS] + "...")


def _call_reward(
    bound: BoundReward, completions: list[str], fields: dict, on_error: str
) -> list[float]:
    kwargs = {key: value for key, value in fields.items() if key not in bound.shadowed}
    try:
        return _checked_call(bound, completions, kwargs)
    except Exception as batch_error:
        # Score one completion at a time to name (or zero) the offending ones.
        values, failures = [], []
        for i, text in enumerate(completions):
            one = {key: [value[i]] for key, value in kwargs.items()}
            try:
                values.extend(_checked_call(bound, [text], one))
            except Exception as e:
                if on_error == "raise":
                    raise RewardError(
                        f"reward {bound.label!r} failed with {type(e).__name__}: {e}\n"
                        f"on completion {i}: {_quote(text)}"
                    ) from e
                values.append(0.0)
                failures.append((i, e))
        if not failures:
            raise RewardError(
                f"reward {bound.label!r} failed on the batch with "
                f"{type(batch_error).__name__}: {batch_error}"
            ) from batch_error
        i, e = failures[0]
        logger.warning(
            "reward %r failed on %d of %d completions (scored 0, rewards.on_error='zero'); "
            "first: completion %d, %s: %s: %s",
            bound.label, len(failures), len(completions), i, type(e).__name__, e,
            _quote(completions[i]),
        )  # fmt: skip
        return values


def score_completions(
    reward_set: RewardSet,
    completions: Sequence[str],
    fields: Mapping[str, Sequence[Any]],
    completion_lengths: Sequence[int] | None = None,
) -> RewardOutput:
    """Run every reward on the batch; see the module docstring."""
    completions = list(completions)
    n = len(completions)
    kwargs: dict[str, list] = {key: list(value) for key, value in fields.items()}
    if completion_lengths is not None:
        kwargs["completion_lengths"] = [int(x) for x in completion_lengths]
    for key, value in kwargs.items():
        if len(value) != n:
            raise RewardError(f"field {key!r} has {len(value)} entries for {n} completions")
    for bound in (*reward_set.rewards, reward_set.correctness):
        missing = [field for field in bound.fields if field not in kwargs]
        if missing:
            raise RewardError(
                f"reward {bound.label!r} needs row fields {missing}; the batch has {sorted(kwargs)}"
            )
    per_fn = {
        bound.label: np.asarray(
            _call_reward(bound, completions, kwargs, reward_set.on_error), np.float32
        )
        for bound in reward_set.rewards
    }
    total = np.zeros(n, np.float32)
    for bound in reward_set.rewards:
        total += np.float32(bound.weight) * per_fn[bound.label]
    correct = np.asarray(
        _call_reward(reward_set.correctness, completions, kwargs, reward_set.on_error), bool
    )
    return RewardOutput(per_fn=per_fn, total=total, correct=correct, task=np.zeros(n, np.int32))
