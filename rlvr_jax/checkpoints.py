"""Orbax checkpoints of a training run: train state, data position, RNG and the config.

A checkpoint holds two items:
  * `state`: the array pytree (trainable params, optimizer state, step, RNG key data; the
    train state keeps its key as raw uint32 data, so it is a plain array tree);
  * `meta`: JSON with the data-iterator position, the RL step and the resolved config,
    so a resumed run continues exactly where it stopped and can be audited.
Saving is synchronous: a checkpoint returned from `save` is complete on disk, which is
what a SIGTERM handler needs before the process exits.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    """When and how many checkpoints to keep (`config.checkpoint`)."""

    every_steps: int  # save every N RL steps (and always at the end and on SIGTERM/SIGINT)
    max_to_keep: int  # newest checkpoints kept on disk

    def __post_init__(self):
        if self.every_steps < 1:
            raise ValueError(f"checkpoint.every_steps must be >= 1, got {self.every_steps}")
        if self.max_to_keep < 1:
            raise ValueError(f"checkpoint.max_to_keep must be >= 1, got {self.max_to_keep}")


def make_manager(workdir: str | Path, cfg: CheckpointConfig) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=cfg.max_to_keep, enable_async_checkpointing=False, create=True
    )
    return ocp.CheckpointManager(Path(workdir).absolute() / "checkpoints", options=options)


def save(manager: ocp.CheckpointManager, step: int, state: Any, meta: dict[str, Any]) -> None:
    manager.save(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
        force=True,
    )
    manager.wait_until_finished()


def restore_latest(manager: ocp.CheckpointManager, like_state: Any) -> tuple[Any, dict] | None:
    """(state, meta) of the newest checkpoint, shaped and sharded like `like_state`; or None."""
    step = manager.latest_step()
    if step is None:
        return None
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like_state)
    restored = manager.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
        ),
    )
    return restored["state"], dict(restored["meta"])
