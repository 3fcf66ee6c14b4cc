"""Typed, validated reward configuration (`config.rewards`).

    rewards.fns = [
        {"name": "answer_match", "weight": 1.0, "params": {"mode": "strict"}},
        {"name": "format_exact", "weight": 0.1, "params": {}},
    ]
    rewards.on_error = "raise"          # or "zero": a raising reward scores 0 for that completion
    rewards.correctness = "answer_match"  # whose verdict is "correct" in diagnostics and eval

Build it with `config_builder.build(RewardsConfig, config.rewards, "rewards")`: the
config declares `fns`, `on_error` and `correctness`; a reward spec may leave out
`weight`, `params` and `label`. Params are checked when the config is built: unknown
keys fail with the list of known ones, and each reward is called once on an empty
batch so a bad value (say `mode='strct'`) fails here, not at the first RL step.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from rlvr_jax.rewards.registry import get_reward, get_verifier, verifier_names

ON_ERROR_CHOICES = ("raise", "zero")
RESERVED_LABELS = ("total",)


@dataclasses.dataclass(frozen=True)
class RewardSpec:
    """One weighted reward function: `name` in the registry, `params` bound from config."""

    name: str
    weight: float = 1.0
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    label: str = ""  # metric name (reward/<label>/mean); "" means `name`

    @property
    def display_name(self) -> str:
        return self.label or self.name

    def __post_init__(self) -> None:
        key = f"rewards.fns[{self.display_name}]"
        entry = get_reward(self.name, key=f"{key}.name")
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)):
            raise ValueError(f"{key}.weight: a number, got {self.weight!r}")
        if not math.isfinite(self.weight):
            raise ValueError(f"{key}.weight: must be finite, got {self.weight}")
        if not isinstance(self.params, Mapping):
            raise ValueError(f"{key}.params: a mapping, got {type(self.params).__name__}")
        known = entry.param_names()
        for param in self.params:
            if param not in known:
                raise ValueError(
                    f"{key}.params: unknown param {param!r} for reward {self.name!r}; "
                    f"choose from {sorted(known)}"
                )
        if self.display_name in RESERVED_LABELS:
            raise ValueError(f"{key}.label: {self.display_name!r} is reserved")
        batch = {field: [] for field in (*entry.field_names(), *entry.special_args())}
        batch.pop("markers", None)
        try:  # an empty batch runs each function's own param checks
            entry.fn([], **batch, **self.params)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{key}.params.{e}") from e


@dataclasses.dataclass(frozen=True)
class RewardsConfig:
    """The weighted reward mix, error policy, and which verifier defines correctness."""

    fns: tuple[RewardSpec, ...]
    on_error: str
    correctness: str

    def __post_init__(self) -> None:
        if not self.fns:
            raise ValueError("rewards.fns: at least one reward is needed")
        labels = [spec.display_name for spec in self.fns]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise ValueError(
                f"rewards.fns: duplicate reward labels {duplicates}; set `label` to tell them apart"
            )
        if self.on_error not in ON_ERROR_CHOICES:
            raise ValueError(
                f"rewards.on_error: unknown value {self.on_error!r}; "
                f"choose one of {list(ON_ERROR_CHOICES)}"
            )
        get_verifier(self.correctness, key="rewards.correctness")
        verifiers = verifier_names()
        used = [spec.name for spec in self.fns if spec.name in verifiers]
        if used and self.correctness not in used:
            raise ValueError(
                f"rewards.correctness: {self.correctness!r} is not among rewards.fns but "
                f"{used[0]!r} is; set rewards.correctness={used[0]!r}"
            )

    def correctness_params(self) -> Mapping[str, Any]:
        """Params of the first spec of the correctness verifier, else its defaults ({})."""
        for spec in self.fns:
            if spec.name == self.correctness:
                return spec.params
        return {}
