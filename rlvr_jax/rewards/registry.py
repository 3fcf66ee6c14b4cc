"""The reward registry: reward functions by name, as config refers to them.

A reward function is host-side, pure Python:

    fn(completions: list[str], *, <row fields>, <params>, **unused) -> list[float]

Keyword-only parameters without a default are row fields: they arrive batched, one
list per field aligned with `completions` (a prompt's row repeated for each of its G
samples). Keyword-only parameters with a default are params, bound once from config
(`RewardSpec.params`) with `functools.partial`. Two names are special: `markers` gets
the run's `Markers`, and `completion_lengths` (optional) gets the sampler's token
counts when the caller passes them. The trailing `**unused` swallows the row fields a
function does not read.

A verifier (a reward that checks the answer) may register a `correct` companion with
the same signature that returns one bool per completion; `RewardsConfig.correctness`
names the one that defines "correct" for diagnostics and evaluation.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

RewardFn = Callable[..., list[float]]
CorrectFn = Callable[..., list[bool]]


class RewardError(RuntimeError):
    """A reward function raised or returned something unusable; the message says which."""


@dataclasses.dataclass(frozen=True)
class RewardEntry:
    fn: RewardFn
    correct: CorrectFn | None

    def _keyword_only(self) -> list[inspect.Parameter]:
        params = inspect.signature(self.fn).parameters.values()
        return [p for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]

    def param_names(self) -> tuple[str, ...]:
        """The params config may set: keyword-only parameters with a default."""
        return tuple(
            p.name
            for p in self._keyword_only()
            if p.default is not inspect.Parameter.empty and p.name not in SPECIAL_ARGS
        )

    def special_args(self) -> tuple[str, ...]:
        """Which of SPECIAL_ARGS the function declares."""
        return tuple(p.name for p in self._keyword_only() if p.name in SPECIAL_ARGS)

    def field_names(self) -> tuple[str, ...]:
        """The row fields the function needs: keyword-only parameters without a default."""
        return tuple(p.name for p in self._keyword_only() if p.default is inspect.Parameter.empty)


# Keyword arguments supplied by the combiner rather than by config or by row fields.
SPECIAL_ARGS = ("markers", "completion_lengths")

REWARDS: dict[str, RewardEntry] = {}


def register_reward(
    name: str, *, correct: CorrectFn | None = None
) -> Callable[[RewardFn], RewardFn]:
    """Decorator: register `fn` under `name` (and its optional correctness companion)."""

    def decorator(fn: RewardFn) -> RewardFn:
        if name in REWARDS:
            raise ValueError(f"reward {name!r} is already registered")
        REWARDS[name] = RewardEntry(fn=fn, correct=correct)
        return fn

    return decorator


def get_reward(name: str, key: str = "rewards.fns[].name") -> RewardEntry:
    if name not in REWARDS:
        raise ValueError(f"{key}: unknown reward {name!r}; choose one of {sorted(REWARDS)}")
    return REWARDS[name]
