"""Typed, validated observer configuration (`config.observers`), and the factory.

    observers.console = True            # progress line, sample completions, eval tables
    observers.jsonl = True              # <workdir>/metrics.jsonl, samples.jsonl
    observers.tensorboard = True        # <workdir>/tensorboard/
    observers.wandb = False             # needs pip install 'rlvr_jax[wandb]'
    observers.wandb_project = ""        # required when wandb is on
    observers.wandb_entity = ""         # "" = the account's default entity
    observers.wandb_run_name = ""       # "" = W&B picks a name
    observers.sample_every = 10         # log sampled completions every N steps; 0 = never
    observers.num_samples_to_log = 4    # how many completions each time
    observers.log_every = 1             # console progress line every N steps

`ObserversConfig.from_dict(config.observers.to_dict())` converts once, at the boundary.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from rlvr_jax.observers.base import Observer
from rlvr_jax.observers.console import ConsoleObserver
from rlvr_jax.observers.group import ObserverGroup
from rlvr_jax.observers.jsonl import JsonlObserver
from rlvr_jax.observers.tensorboard import TensorBoardObserver
from rlvr_jax.observers.wandb import WandbObserver

_BOOLS = ("console", "jsonl", "tensorboard", "wandb")
_STRS = ("wandb_project", "wandb_entity", "wandb_run_name")


@dataclasses.dataclass(frozen=True)
class ObserversConfig:
    """Which sinks log the run, and how often samples and progress lines appear."""

    console: bool = True  # progress line every log_every steps, samples, eval tables (absl INFO)
    jsonl: bool = True  # <workdir>/metrics.jsonl (every step) and samples.jsonl
    tensorboard: bool = True  # <workdir>/tensorboard/ (tensorboardX), scalars every step
    wandb: bool = False  # Weights & Biases; pip install 'rlvr_jax[wandb]'
    wandb_project: str = ""  # W&B project; required when wandb=True
    wandb_entity: str = ""  # W&B entity (team or user); "" = the account's default
    wandb_run_name: str = ""  # W&B display name; "" = W&B picks one
    sample_every: int = 10  # log sampled completions every N steps; 0 = never
    num_samples_to_log: int = 4  # completions logged each time (the first of the batch)
    log_every: int = 1  # console progress line every N steps (files always get every step)

    def __post_init__(self) -> None:
        for key in _BOOLS:
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"observers.{key}: True or False, got {getattr(self, key)!r}")
        for key in _STRS:
            if not isinstance(getattr(self, key), str):
                raise ValueError(f"observers.{key}: a string, got {getattr(self, key)!r}")
        for key, low in (("sample_every", 0), ("num_samples_to_log", 1), ("log_every", 1)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"observers.{key}: an int >= {low}, got {value!r}")
        if self.wandb and not self.wandb_project:
            raise ValueError("observers.wandb_project: required when observers.wandb=True")

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> ObserversConfig:
        """Build from a plain mapping such as `config.observers.to_dict()`."""
        unknown = set(config) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"observers: unknown keys {sorted(unknown)}")
        return cls(**config)


def make_observers(
    config: ObserversConfig, workdir: str | os.PathLike, is_main_process: bool
) -> ObserverGroup:
    """The enabled sinks as one group; an empty (no-op) group where `is_main_process` is False.

    Only process 0 of a multi-host run logs: pass `jax.process_index() == 0`. Optional
    packages (tensorboardX, wandb) are imported by the sinks that need them, here, so a
    missing `wandb` fails before any compilation.
    """
    observers: list[Observer] = []
    if is_main_process:
        os.makedirs(workdir, exist_ok=True)
        if config.console:
            observers.append(ConsoleObserver(log_every=config.log_every))
        if config.jsonl:
            observers.append(JsonlObserver(workdir))
        if config.tensorboard:
            observers.append(TensorBoardObserver(workdir))
        if config.wandb:
            observers.append(
                WandbObserver(
                    workdir, config.wandb_project, config.wandb_entity, config.wandb_run_name
                )
            )
    return ObserverGroup(
        observers,
        sample_every=config.sample_every,
        num_samples_to_log=config.num_samples_to_log,
    )
