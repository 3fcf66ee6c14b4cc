"""The reward registry: reward functions by name, as config refers to them.

A reward function is host-side, pure Python:

    fn(completions: list[str], *, <row fields>, <params>, **unused) -> list[float]

Keyword-only parameters without a default are row fields: they arrive batched, one
list per field aligned with `completions` (a prompt's row repeated for each of its G
samples). Keyword-only parameters with a default are params, bound once from config
(`RewardSpec.params`) with `functools.partial`. Two names are special: `markers` gets
the run's `Markers`, and `completion_lengths` (optional) gets the sampler's token
counts when the caller passes them. The trailing `**unused` swallows the row fields
(and, for a verifier's functions, the reward's params) a function does not read.

A verifier (a reward that checks the answer) registers a `Verifier`: what evaluation
and diagnostics need from it, declared once next to the reward. Its `correct` and
`answers` take the same row fields as the reward, by the same convention, plus
`markers` and `mode`; `correct` is also called with the reward's params (it reads the
ones it needs). `RewardsConfig.correctness` names the verifier that defines "correct"
for diagnostics and evaluation; `get_verifier` looks one up.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

from rlvr_jax.imports import check_callable, import_component, is_import_path
from rlvr_jax.markers import Markers

RewardFn = Callable[..., list[float]]
CorrectFn = Callable[..., list[bool]]
AnswerFn = Callable[..., list[str | None]]
VoteKeyFn = Callable[[str], str | None]
FormatFn = Callable[[str, Markers], bool]

# Keyword arguments supplied by the combiner rather than by config or by row fields.
SPECIAL_ARGS = ("markers", "completion_lengths")
# Keyword params every verifier function (`correct`, `answers`) must declare with a default.
VERIFIER_ARGS = ("markers", "mode")


class RewardError(RuntimeError):
    """A reward function raised or returned something unusable; the message says which."""


def _keyword_only(fn: Callable) -> list[inspect.Parameter]:
    params = inspect.signature(fn).parameters.values()
    return [p for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def param_names(fn: Callable) -> tuple[str, ...]:
    """The params config may set: keyword-only parameters with a default, less SPECIAL_ARGS."""
    return tuple(
        p.name
        for p in _keyword_only(fn)
        if p.default is not inspect.Parameter.empty and p.name not in SPECIAL_ARGS
    )


def special_args(fn: Callable) -> tuple[str, ...]:
    """Which of SPECIAL_ARGS `fn` declares."""
    return tuple(p.name for p in _keyword_only(fn) if p.name in SPECIAL_ARGS)


def field_names(fn: Callable) -> tuple[str, ...]:
    """The row fields `fn` needs: keyword-only parameters without a default."""
    return tuple(p.name for p in _keyword_only(fn) if p.default is inspect.Parameter.empty)


@dataclasses.dataclass(frozen=True)
class Verifier:
    """What evaluation and diagnostics need from a verifier reward, declared once per verifier."""

    # (completions, *, <row fields>, markers, mode, <params>, **unused) -> list[bool]
    correct: CorrectFn
    # (completions, *, <row fields>, markers, mode, **unused) -> list[str | None]: the
    # answer each completion proposes (None = nothing found), as shown in eval records
    answers: AnswerFn
    # (answer: str) -> str | None: maj@k groups answers by this key; None abstains
    vote_key: VoteKeyFn
    # (text: str, markers: Markers) -> bool: the layout check eval reports as format_rate
    format_ok: FormatFn


@dataclasses.dataclass(frozen=True)
class RewardEntry:
    fn: RewardFn
    verifier: Verifier | None

    def param_names(self) -> tuple[str, ...]:
        """The params config may set: keyword-only parameters of `fn` with a default."""
        return param_names(self.fn)

    def special_args(self) -> tuple[str, ...]:
        """Which of SPECIAL_ARGS `fn` declares."""
        return special_args(self.fn)

    def field_names(self) -> tuple[str, ...]:
        """The row fields `fn` needs: keyword-only parameters without a default."""
        return field_names(self.fn)


REWARDS: dict[str, RewardEntry] = {}


def _check_verifier(name: str, fn: RewardFn, verifier: Verifier) -> None:
    """A verifier's functions read the reward's row fields and accept `markers` and `mode`."""
    fields, params = set(field_names(fn)), set(param_names(fn))
    for role in ("correct", "answers"):
        companion = getattr(verifier, role)
        extra = sorted(set(field_names(companion)) - fields)
        if extra:
            raise ValueError(
                f"reward {name!r}: verifier.{role} needs row fields {extra} the reward does not"
            )
        declared = {p.name for p in _keyword_only(companion)}
        missing = [arg for arg in VERIFIER_ARGS if arg not in declared]
        if missing:
            raise ValueError(f"reward {name!r}: verifier.{role} must accept {missing}")
    extra = sorted(set(param_names(verifier.correct)) - params)
    if extra:
        raise ValueError(f"reward {name!r}: verifier.correct has params {extra} the reward lacks")


def register_reward(
    name: str, *, verifier: Verifier | None = None
) -> Callable[[RewardFn], RewardFn]:
    """Decorator: register `fn` under `name`, with its `Verifier` if it checks answers."""

    def decorator(fn: RewardFn) -> RewardFn:
        if name in REWARDS:
            raise ValueError(f"reward {name!r} is already registered")
        if verifier is not None:
            _check_verifier(name, fn, verifier)
        REWARDS[name] = RewardEntry(fn=fn, verifier=verifier)
        return fn

    return decorator


def get_reward(name: str, key: str = "rewards.fns[].name") -> RewardEntry:
    """The registered reward `name`, or the function at the import path `module:fn`."""
    if is_import_path(name):
        return _imported_reward(name, key)
    if name not in REWARDS:
        raise ValueError(
            f"{key}: unknown reward {name!r}; choose one of {sorted(REWARDS)} or give an "
            "import path 'module:function'"
        )
    return REWARDS[name]


def _imported_reward(path: str, key: str) -> RewardEntry:
    """A user's reward: `fn(completions, *, <row fields>, <params>, **unused)`. If its module
    registered it (`@register_reward`, with a `Verifier` or not), that entry is used."""
    fn = check_callable(import_component(path, key), path, key, positional=1)
    registered = [entry for entry in REWARDS.values() if entry.fn is fn]
    if registered:
        return registered[0]
    others = [
        p.name
        for p in list(inspect.signature(fn).parameters.values())[1:]
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    if others:
        raise ValueError(
            f"{key}: {path!r}: after `completions`, parameters must be keyword-only (row "
            f"fields without a default, params with one), got positional {others}"
        )
    return RewardEntry(fn=fn, verifier=None)


def verifier_names() -> list[str]:
    """The registered rewards that declare a `Verifier`, sorted."""
    return sorted(name for name, entry in REWARDS.items() if entry.verifier is not None)


def get_verifier(name: str, key: str = "rewards.correctness") -> tuple[RewardEntry, Verifier]:
    """The entry and `Verifier` of reward `name`; a ValueError naming `key` if it has none."""
    entry = get_reward(name, key) if is_import_path(name) else REWARDS.get(name)
    if entry is None or entry.verifier is None:
        raise ValueError(f"{key}: {name!r} is not a verifier; choose one of {verifier_names()}")
    return entry, entry.verifier
