"""User components by import path: `"my_package.my_module:my_function"` wherever config
names a registered component (a reward in `rewards.fns[].name`, a verifier in
`rewards.correctness`, a dataset loader in `data.name`), so a new one needs no edit of this
package. The module is imported when the config is built, and the component's signature is
checked there: a bad path or signature fails before anything loads, naming the key and the
path.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable


def is_import_path(name: str) -> bool:
    """`module:attr` (a registered name never has a colon)."""
    return ":" in name


def import_component(path: str, key: str) -> object:
    """The object at `path` = 'module.sub:attr'; a ValueError naming `key` and `path`."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"{key}: {path!r} is not an import path 'module:attribute'")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # the user's module may fail in any way while importing
        raise ValueError(f"{key}: cannot import module {module_name!r} of {path!r}: {e}") from e
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{key}: module {module_name!r} has no {attr!r} (from {path!r})")
        obj = getattr(obj, part)
    return obj


def check_callable(obj: object, path: str, key: str, positional: int) -> Callable:
    """`obj` must be callable with `positional` positional arguments."""
    if not callable(obj):
        raise ValueError(f"{key}: {path!r} is a {type(obj).__name__}, not a function")
    params = list(inspect.signature(obj).parameters.values())
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    slots = [p for p in params if p.kind in kinds]
    varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    required = [p for p in slots if p.default is inspect.Parameter.empty]
    if (len(slots) < positional and not varargs) or len(required) > positional:
        raise ValueError(
            f"{key}: {path!r} must take {positional} positional argument(s); its signature "
            f"is {inspect.signature(obj)}"
        )
    return obj
