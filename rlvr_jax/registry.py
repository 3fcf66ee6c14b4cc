"""Components by name, as config refers to them: one small registry type for all kinds.

    DATASETS = Registry("dataset", "data.name")

    @DATASETS.register("arithmetic")
    def load_arithmetic(config, which): ...

    loader = DATASETS.lookup(config.name)   # ValueError naming `data.name` and the choices

A `Registry` is a dict (name -> component), so `name in DATASETS` and `sorted(DATASETS)`
read as usual; registering a name twice is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    def __init__(self, kind: str, key: str):
        super().__init__()
        self.kind = kind  # what the components are, for messages ("dataset")
        self.key = key  # the config key that names one ("data.name")

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated component under `name`."""

        def decorator(component: T) -> T:
            if name in self:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self[name] = component
            return component

        return decorator

    def lookup(self, name: str, key: str | None = None) -> T:
        """The component named `name`; a ValueError naming the config key and the choices."""
        if name not in self:
            raise ValueError(
                f"{key or self.key}: unknown {self.kind} {name!r}; choose one of {sorted(self)}"
            )
        return self[name]
