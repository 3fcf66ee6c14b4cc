"""Orbax checkpoints of a training run: train state, data position, RNG and the config.

A checkpoint holds two items:
  * `state`: the array pytree (trainable params, optimizer state, step, RNG key data; the
    train state keeps its key as raw uint32 data, so it is a plain array tree);
  * `meta`: JSON with the data-iterator position, the RL step and the resolved config,
    so a resumed run continues exactly where it stopped and can be audited.
Saving is synchronous: a checkpoint returned from `save` is complete on disk, which is
what a SIGTERM handler needs before the process exits.

Crash safety. Orbax writes a step into `<step>.orbax-checkpoint-tmp`, then writes
`commit_success.txt` and renames the directory to `<step>` (atomic on a local file system).
A process killed at any moment (SIGKILL included) leaves either the finished `<step>` or
a tmp directory that is never read (and is removed when that step is saved again).
`restore_latest` restores the newest step that is *complete*: finalized by that rename,
with its commit marker and both items' markers present; an incomplete one (a deletion of
an old step cut short) is skipped with a warning. A save that fails (a full disk, lost
permissions) raises `CheckpointWriteError` naming the directory and the previous step,
which stays valid, after removing the failed step's tmp directory.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging

from rlvr_jax.errors import CheckpointWriteError
from rlvr_jax.log_filter import third_party_held_back

COMMIT_MARKER = "commit_success.txt"  # Orbax writes it last, before the final rename
ITEMS = ("state", "meta")


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    """When and how many checkpoints to keep (`config.checkpoint`)."""

    every_steps: int  # save every N RL steps (and always at the end and on SIGTERM/SIGINT)
    max_to_keep: int  # newest checkpoints kept on disk
    allow_config_changes: bool  # resume even where the config changed unsafe keys (resume.py)

    def __post_init__(self):
        if self.every_steps < 1:
            raise ValueError(f"checkpoint.every_steps must be >= 1, got {self.every_steps}")
        if self.max_to_keep < 1:
            raise ValueError(f"checkpoint.max_to_keep must be >= 1, got {self.max_to_keep}")
        if not isinstance(self.allow_config_changes, bool):
            raise ValueError(
                f"checkpoint.allow_config_changes: True or False, got {self.allow_config_changes!r}"
            )


def make_manager(workdir: str | Path, cfg: CheckpointConfig) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=cfg.max_to_keep, enable_async_checkpointing=False, create=True
    )
    return ocp.CheckpointManager(Path(workdir).absolute() / "checkpoints", options=options)


def save(manager: ocp.CheckpointManager, step: int, state: Any, meta: dict[str, Any]) -> None:
    """Writes step `step` completely, or raises `CheckpointWriteError` (previous step intact)."""
    try:
        with third_party_held_back():  # Orbax logs the failure per thread; we report it once
            manager.save(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
                ),
                force=True,
            )
            manager.wait_until_finished()
    except Exception as e:
        directory = Path(manager.directory)
        for tmp in directory.glob(f"{step}.orbax-checkpoint-tmp*"):
            shutil.rmtree(tmp, ignore_errors=True)  # frees what the failed save took
        previous = latest_complete_step(directory)
        kept = f"step {previous} is intact" if previous is not None else "none was saved before"
        cause = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointWriteError(
            f"could not write checkpoint step {step} in {directory}: {cause}. The previous "
            f"checkpoint: {kept}; free space or fix permissions there and rerun the same "
            "command to resume from it."
        ) from e


def is_complete(step_dir: Path) -> bool:
    """Finalized (renamed from tmp), with Orbax's commit marker and both items present."""
    return (
        step_dir.name.isdigit()
        and (step_dir / COMMIT_MARKER).is_file()
        and all((step_dir / item / COMMIT_MARKER).is_file() for item in ITEMS)
    )


def latest_complete_step(directory: str | Path) -> int | None:
    """The newest complete step in a checkpoint directory; incomplete ones are logged."""
    directory = Path(directory)
    steps = sorted((int(p.name) for p in directory.glob("*") if p.name.isdigit()), reverse=True)
    for step in steps:
        if is_complete(directory / str(step)):
            return step
        logging.warning("checkpoint %s is incomplete: skipped", directory / str(step))
    return None


def latest_meta(manager: ocp.CheckpointManager) -> tuple[int, dict] | None:
    """(step, meta) of the newest complete checkpoint, without reading its arrays; or None."""
    step = latest_complete_step(manager.directory)
    if step is None:
        return None
    restored = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
    return step, dict(restored["meta"])


def restore_latest(manager: ocp.CheckpointManager, like_state: Any) -> tuple[Any, dict] | None:
    """(state, meta) of the newest complete checkpoint, shaped and sharded like `like_state`;
    or None."""
    step = latest_complete_step(manager.directory)
    if step is None:
        return None
    target = _restore_target(like_state, Path(manager.directory) / str(step) / "state")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    restored = manager.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
        ),
    )
    state = restored["state"]
    if isinstance(target, dict) and not isinstance(like_state, dict):
        state = like_state.replace(**state)
    return state, dict(restored["meta"])


def _restore_target(like_state: Any, state_dir: Path) -> Any:
    """`like_state`, or (a dataclass state whose None fields the checkpoint does not hold:
    one written before those fields existed, e.g. PPO's `critic`) a dict of the fields it
    holds. A non-None field the checkpoint lacks is an error naming it."""
    if not dataclasses.is_dataclass(like_state):
        return like_state
    with third_party_held_back():  # Orbax warns that a metadata file it does not need is absent
        metadata = ocp.StandardCheckpointer().metadata(state_dir)
    on_disk = set(metadata.item_metadata.keys())
    names = [f.name for f in dataclasses.fields(like_state)]
    missing = [n for n in names if n not in on_disk]
    if not missing:
        return like_state
    needed = [n for n in missing if getattr(like_state, n) is not None]
    if needed:
        raise ValueError(
            f"checkpoint {state_dir.parent} holds no {needed} (its state has {sorted(on_disk)}): "
            "it was written by a run with another rl.algorithm"
        )
    return {n: getattr(like_state, n) for n in names if n in on_disk}
