"""The observer registry: sink factories by name, the name of the sink's key in config.

A factory builds one sink from the run's observer config and workdir:

    factory(config: ObserversConfig, workdir: str | os.PathLike) -> Observer

Each sink module registers its own, under the name of its boolean key in `config.observers`
(`console`, `jsonl`, `tensorboard`, `wandb`):

    @register_observer("jsonl")
    def make_jsonl_observer(config, workdir):
        return JsonlObserver(workdir)

`make_observers` (config.py) calls the factory of each sink whose key is True. A factory
imports the optional package its sink needs (tensorboardX, wandb), so a missing one fails
when the observers are built, before any compilation.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from rlvr_jax.observers.base import Observer
from rlvr_jax.registry import Registry

if TYPE_CHECKING:
    from rlvr_jax.observers.config import ObserversConfig

ObserverFactory = Callable[["ObserversConfig", "str | os.PathLike"], Observer]

OBSERVERS: Registry[ObserverFactory] = Registry("observer", "observers", arity=2)
# @register_observer("jsonl"): the factory of the sink enabled by `observers.jsonl`.
register_observer = OBSERVERS.register


def get_observer(name: str) -> ObserverFactory:
    """The factory registered as `name`; an error naming the config key if there is none."""
    return OBSERVERS.lookup(name, key=f"observers.{name}")
