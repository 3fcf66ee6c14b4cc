"""Resuming a run: is the config the checkpoint was trained with still the one asked for?

A checkpoint's meta holds the resolved config it was written under. Resuming compares it
key by key (dotted keys, lists compared whole) with the config of this launch:

* keys in `SAFE_CHANGES` may change: they decide how long the run goes, how it is
  evaluated, logged and checkpointed, never the numbers of the steps already planned;
  each change is logged;
* any other difference (the algorithm, the data, the model, the optimizer, the mesh)
  stops the run before anything is loaded or written, with a `ConfigChangedError` naming
  every such key with its old and new value, unless `checkpoint.allow_config_changes`
  is True: then the changes are logged as warnings and the run continues.

A change to `max_steps` carries `optim.total_steps` with it (the config derives it): with
`optim.schedule = 'warmup_cosine'` the schedule is then stretched to the new end from
the resumed step on; with a constant schedule nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from absl import logging

from rlvr_jax.errors import ConfigChangedError

# Dotted keys, or group prefixes ending in '.', that may differ from the checkpoint's.
SAFE_CHANGES = (
    "max_steps",  # extend (or end earlier) a run
    "optim.total_steps",  # derived from max_steps * rl.num_iterations
    "eval.",  # what the periodic evaluation measures, and how often
    "data.eval_split",  # the held-out split (training rows are untouched)
    "data.eval_max_samples",
    "observers.",  # logging sinks, sample logging, console
    "health.",  # alert thresholds and stop_on: resuming after an alert stop changes them
    "compile_cache.",  # where compiled programs are kept: the same programs either way
    "checkpoint.every_steps",
    "checkpoint.max_to_keep",
    "checkpoint.allow_config_changes",
    "model.cache_dir",  # where converted checkpoints are cached
)
ABSENT = "<absent>"  # a key one of the two configs does not have
# Keys added after checkpoints were first written: key (or group prefix) -> (the key that
# decides, its value that trains as before the keys existed). Absent from a checkpoint's
# config while that key has that value, they are no change (older runs still resume).
ADDED_AS_BEFORE = {
    "data.mixture": ("data.mixture", {}),
    "data.curriculum.": ("data.curriculum.mode", "none"),
}


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'rl': {'beta': 0.04}} -> {'rl.beta': 0.04}; lists and tuples are leaves."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = list(value) if isinstance(value, tuple) else value
    return out


def config_changes(saved: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, tuple]:
    """Dotted key -> (checkpoint's value, this launch's value), for every key that differs."""
    old, new = flatten(saved), flatten(current)
    return {
        key: (old.get(key, ABSENT), new.get(key, ABSENT))  # a side without the key: ABSENT
        for key in sorted(set(old) | set(new))
        if old.get(key, ABSENT) != new.get(key, ABSENT)
    }


def is_safe(key: str) -> bool:
    return any(key == s or (s.endswith(".") and key.startswith(s)) for s in SAFE_CHANGES)


def _added_as_before(key: str, current: Mapping[str, Any]) -> bool:
    for added, (decides, value) in ADDED_AS_BEFORE.items():
        if key == added or (added.endswith(".") and key.startswith(added)):
            return current.get(decides, ABSENT) == value
    return False


def _describe(changes: Mapping[str, tuple]) -> str:
    return ", ".join(f"{key} ({old!r} -> {new!r})" for key, (old, new) in changes.items())


def check_config(
    saved: Mapping[str, Any],
    current: Mapping[str, Any],
    allow_changes: bool,
    where: str,
) -> dict[str, tuple]:
    """Refuses a resume that changes keys outside `SAFE_CHANGES` (see the module doc).

    `where` names the checkpoint in messages. Returns the changes accepted.
    """
    new = flatten(current)
    changes = {
        key: (old, value)
        for key, (old, value) in config_changes(saved, current).items()
        if not (old == ABSENT and _added_as_before(key, new))
    }
    safe = {k: v for k, v in changes.items() if is_safe(k)}
    unsafe = {k: v for k, v in changes.items() if not is_safe(k)}
    if safe:
        logging.info("resuming %s with changed settings: %s", where, _describe(safe))
    if unsafe and not allow_changes:
        raise ConfigChangedError(
            f"the config differs from the one {where} was trained with, in keys that change "
            f"training: {_describe(unsafe)}. Resume with the checkpoint's values, start a "
            "new run in another --workdir, or accept the changes with "
            "--config.checkpoint.allow_config_changes=True. Keys that may change on resume: "
            f"{', '.join(SAFE_CHANGES)}."
        )
    if unsafe:
        logging.warning(
            "resuming %s with changed training settings (checkpoint.allow_config_changes): %s",
            where,
            _describe(unsafe),
        )
    return changes


def finished_message(step: int, max_steps: int, where: str) -> str | None:
    """What a resume at or past the last step says (None: there are steps left)."""
    if step < max_steps:
        return None
    return (
        f"nothing to do: {where} is at RL step {step} and max_steps is {max_steps}; "
        "checking the exports (raise --config.max_steps to train further)"
    )
