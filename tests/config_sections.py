"""Typed config sections for tests, built the one way code gets config: the strict builder.

    section(DataConfig, "data", name="countdown", countdown={"num_train": 300})

starts from the values configs/arithmetic.py (the base of every config) declares for the
group, merges the overrides into them, and builds through `config_builder.build`: an
unknown override key is a ConfigError naming the dotted key, as in a config file.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from rlvr_jax.config_builder import build, sibling_config

T = TypeVar("T")

CONFIGS = Path(__file__).parents[1] / "configs"
BASE_CONFIG = CONFIGS / "arithmetic.py"


@functools.cache
def _base_values() -> dict[str, Any]:
    return sibling_config(str(BASE_CONFIG), BASE_CONFIG.stem).to_dict()


def base_config() -> Any:
    """A fresh copy of configs/arithmetic.py's `get_config()` (an ml_collections ConfigDict)."""
    return sibling_config(str(BASE_CONFIG), BASE_CONFIG.stem)


def merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overrides`; a dict override of a group merges into it, key by key."""
    out = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def section(cls: type[T], group: str, **overrides: Any) -> T:
    """`cls` built by config_builder.build from configs/arithmetic.py's `group`, with overrides
    (nested dicts merge)."""
    return build(cls, merged(_base_values()[group], overrides), group)
