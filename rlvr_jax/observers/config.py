"""Typed, validated observer configuration (`config.observers`), and the factory.

    observers.console = True            # progress, sample completions, eval summaries
    observers.jsonl = True              # <workdir>/metrics.jsonl, samples.jsonl
    observers.tensorboard = True        # <workdir>/tensorboard/
    observers.wandb = False             # needs pip install 'rlvr_jax[wandb]'
    observers.wandb_project = "rlvr_jax"  # required when wandb is on
    observers.wandb_entity = ""         # "" = the account's default entity
    observers.wandb_run_name = ""       # "" = W&B picks a name
    observers.sample_every = 10         # log sampled completions every N steps; 0 = never
    observers.num_samples_to_log = 3    # how many completions each time
    observers.log_every = 1             # console progress line every N steps
    observers.third_party_logging = False  # True: Orbax/JAX/absl INFO records on the console
    observers.custom = ("my_pkg.sinks:make",)  # your sinks by import path; () = none

The dataclass has no defaults: every key comes from the config file (configs/arithmetic.py
declares them all), converted once, at the boundary, by
`config_builder.build(ObserversConfig, config.observers, "observers")`.

Sinks come from the registry (registry.py): each sink module registers a factory under the
name of its boolean key, and `make_observers` builds the enabled ones in `SINKS` order, then
those of `observers.custom`: factories by import path 'module:attr' with the registered
factories' signature, `factory(config, workdir) -> Observer`, imported and checked when the
config is built (rlvr_jax/imports.py: an error names `observers.custom[i]` and the path).
"""

from __future__ import annotations

import dataclasses
import os

from rlvr_jax.imports import is_import_path
from rlvr_jax.observers import console, jsonl, tensorboard, wandb  # noqa: F401  (registers)
from rlvr_jax.observers.base import Observer
from rlvr_jax.observers.group import ObserverGroup
from rlvr_jax.observers.registry import OBSERVERS, ObserverFactory, get_observer

# The boolean keys, one per registered sink, in the order make_observers builds them (and
# the group calls them). A new sink needs a field here and in ObserversConfig.
SINKS = ("console", "jsonl", "tensorboard", "wandb")
_STRS = ("wandb_project", "wandb_entity", "wandb_run_name")


@dataclasses.dataclass(frozen=True)
class ObserversConfig:
    """Which sinks log the run, and how often samples and progress lines appear."""

    console: bool  # progress bars (a terminal) or lines, samples, eval and run summaries
    jsonl: bool  # <workdir>/metrics.jsonl (every step) and samples.jsonl
    tensorboard: bool  # <workdir>/tensorboard/ (tensorboardX), scalars every step
    wandb: bool  # Weights & Biases; pip install 'rlvr_jax[wandb]'
    wandb_project: str  # W&B project; required when wandb=True
    wandb_entity: str  # W&B entity (team or user); "" = the account's default
    wandb_run_name: str  # W&B display name; "" = W&B picks one
    sample_every: int  # log sampled completions every N steps; 0 = never
    num_samples_to_log: int  # completions logged each time (the first of the batch)
    log_every: int  # console progress line every N steps (files always get every step)
    third_party_logging: bool  # let other packages' INFO records through (rlvr_jax.log_filter)
    custom: tuple[str, ...]  # sink factories by import path 'module:attr', after the built-ins

    def __post_init__(self) -> None:
        object.__setattr__(self, "custom", tuple(self.custom))
        self.custom_factories()  # imported and signature-checked here, at config build
        for key in (*SINKS, "third_party_logging"):
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

    def custom_factories(self) -> tuple[ObserverFactory, ...]:
        """The factories of `custom`; a ValueError naming `observers.custom[i]` and the path."""
        factories = []
        for i, path in enumerate(self.custom):
            key = f"observers.custom[{i}]"
            if not isinstance(path, str) or not is_import_path(path):
                raise ValueError(f"{key}: {path!r} is not an import path 'module:attribute'")
            factories.append(OBSERVERS.lookup(path, key=key))
        return tuple(factories)


def make_observers(
    config: ObserversConfig, workdir: str | os.PathLike, is_main_process: bool
) -> ObserverGroup:
    """The enabled sinks as one group; an empty (no-op) group where `is_main_process` is False.

    Each sink of `SINKS` (console, jsonl, tensorboard, wandb, in this order) whose key is
    True is built by its registered factory. Only process 0 of a multi-host run logs: pass
    `jax.process_index() == 0`. Optional packages (tensorboardX, wandb) are imported by the
    factories of the sinks that need them, here, so a missing `wandb` fails before any
    compilation.
    """
    observers: list[Observer] = []
    if is_main_process:
        os.makedirs(workdir, exist_ok=True)
        for name in SINKS:
            if getattr(config, name):
                observers.append(get_observer(name)(config, workdir))
        for factory in config.custom_factories():
            observers.append(factory(config, workdir))
    return ObserverGroup(
        observers,
        sample_every=config.sample_every,
        num_samples_to_log=config.num_samples_to_log,
    )
