"""ml_collections config -> frozen, validated dataclasses, once, at the boundary.

`build(cls, mapping, key)` requires the mapping to declare exactly the dataclass's fields:
an unknown key and an undeclared key are both errors that name the dotted key, so every
value the code reads is visible (and overridable) in the config file. Nested dataclasses
recurse; lists become tuples; a tuple of dataclasses (such as reward specs) is built
element by element, where fields with defaults may be left out.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value or key is wrong; the message starts with the dotted key."""


def _plain(value: Any) -> Any:
    """ConfigDict/FrozenConfigDict -> dict (recursively), lists kept."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value


def _dataclass_of(hint: Any) -> type | None:
    if dataclasses.is_dataclass(hint):
        return hint
    for arg in typing.get_args(hint):  # Optional[SomeConfig]
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def _tuple_item_dataclass(hint: Any) -> type | None:
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis and dataclasses.is_dataclass(args[0]):
            return args[0]
    return None


def _is_tuple(hint: Any) -> bool:
    if typing.get_origin(hint) is tuple:
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_is_tuple(a) for a in typing.get_args(hint))
    return False


def build(cls: type[T], mapping: Mapping[str, Any], key: str, strict: bool = True) -> T:
    """Builds `cls` from `mapping`; `key` is the dotted config path used in errors ("" = root)."""
    mapping = _plain(mapping)
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{key}: expected a group of keys, got {type(mapping).__name__}")
    prefix = f"{key}." if key else ""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        raise ConfigError(
            f"{prefix}{unknown[0]}: unknown key; {key or 'the config'} has {sorted(fields)}"
        )
    kwargs = {}
    for name, field in fields.items():
        dotted = prefix + name
        if name not in mapping:
            has_default = (
                field.default is not dataclasses.MISSING
                or field.default_factory is not dataclasses.MISSING
            )
            if strict or not has_default:
                raise ConfigError(f"{dotted}: not declared in the config")
            continue
        value, hint = _plain(mapping[name]), hints[name]
        nested = _dataclass_of(hint)
        item = _tuple_item_dataclass(hint)
        if nested is not None and isinstance(value, Mapping):
            value = build(nested, value, dotted, strict)
        elif item is not None:
            value = tuple(
                build(item, v, f"{dotted}[{i}]", strict=False) for i, v in enumerate(value)
            )
        elif _is_tuple(hint) and isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as e:
        message = str(e)
        if key and not message.startswith(key):
            message = f"{key}: {message}"
        raise ConfigError(message) from e


def sibling_config(config_file: str, name: str) -> Any:
    """`get_config()` of `<name>.py` beside `config_file`: configs derive from each other.

    Config files are loaded by path (config_flags), not as a package, so a derived config
    (configs/tiny.py) cannot `import` its parent; it calls this with its own `__file__`.
    """
    import importlib.util
    from pathlib import Path

    path = Path(config_file).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"rlvr_jax_config_{name}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"config file {path} not found")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()
