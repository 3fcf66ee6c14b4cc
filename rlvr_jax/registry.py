"""Components by name, as config refers to them: one small registry type for all kinds.

    DATASETS = Registry("dataset", "data.name", arity=2)

    @DATASETS.register("arithmetic")
    def load_arithmetic(config, which): ...

    loader = DATASETS.lookup(config.name)   # ValueError naming `data.name` and the choices

A `Registry` is a dict (name -> component), so `name in DATASETS` and `sorted(DATASETS)`
read as usual; registering a name twice is an error. `lookup` also accepts an import path
`module:attr` (`rlvr_jax/imports.py`): a user's component, no registration needed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from rlvr_jax.imports import check_callable, import_component, is_import_path

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    def __init__(self, kind: str, key: str, arity: int):
        super().__init__()
        self.kind = kind  # what the components are, for messages ("dataset")
        self.key = key  # the config key that names one ("data.name")
        self.arity = arity  # positional arguments a component takes (checked on import)

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated component under `name`."""

        def decorator(component: T) -> T:
            if name in self:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self[name] = component
            return component

        return decorator

    def lookup(self, name: str, key: str | None = None) -> T:
        """The component named `name`, or the one at the import path `module:attr` (checked
        to take `self.arity` positional arguments); a ValueError naming the config key."""
        key = key or self.key
        if is_import_path(name):
            return check_callable(import_component(name, key), name, key, self.arity)
        if name not in self:
            raise ValueError(
                f"{key}: unknown {self.kind} {name!r}; choose one of {sorted(self)} or give "
                "an import path 'module:attribute'"
            )
        return self[name]
