"""The end-of-run export of a training run: written atomically, marked with its RL step.

    <workdir>/export/adapter/       PEFT LoRA adapter (LoRA runs)
    <workdir>/export/merged/        HF checkpoint, the adapters folded in
    <workdir>/export/critic/        PPO's critic (export.export_critic; PPO runs)
    <workdir>/export/export.json    {"rl_step": 36}: the train state it holds

The export is written into `export.partial/`, then swapped in by renames, so a process
killed while exporting leaves either the previous complete export or none, never a
half-written one under `export/`. A run that starts at (or past) its last step exports
again when `export/` is missing or holds another step (`is_current`), and otherwise does
nothing: a resume after a crash during the export finishes it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from absl import logging

from rlvr_jax.export import export_critic, export_merged, export_peft_adapter
from rlvr_jax.multihost import any_process, fetch_global
from rlvr_jax.run_setup import RunSetup

EXPORT_DIR = "export"
MARKER = "export.json"


def exported_step(out: Path) -> int | None:
    """The RL step whose state `out` holds, or None (no export, or an unmarked one)."""
    try:
        return int(json.loads((out / MARKER).read_text())["rl_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_current(out: Path, step: int) -> bool:
    """Whether every process sees an export of `step` at `out` (a collective)."""
    return not any_process(exported_step(out) != step)


def export_run(run: RunSetup, state: Any, out: Path, step: int, is_main: bool) -> None:
    """A PEFT adapter (LoRA runs), a merged HF checkpoint and PPO's critic under `out`,
    from the train state `state`, written by the main process (every process must call it:
    gathering the trees is a collective)."""
    params, lora = run.policy.export_trees(state.trainable)
    critic = fetch_global(state.critic)
    if not is_main:
        return
    partial, old = out.with_name(out.name + ".partial"), out.with_name(out.name + ".old")
    shutil.rmtree(partial, ignore_errors=True)  # a crashed export's leftovers
    cfg = run.policy.model.cfg
    checkpoint = run.exp.model.checkpoint
    if lora is not None:
        export_peft_adapter(lora, run.exp.lora, cfg, partial / "adapter", checkpoint)
    lora_cfg = run.exp.lora if lora is not None else None
    export_merged(params, lora, lora_cfg, cfg, partial / "merged", run.checkpoint_dir)
    if critic is not None:
        export_critic(
            critic, run.exp.rl.ppo.critic, run.exp.lora, cfg, partial / "critic", checkpoint
        )
    (partial / MARKER).write_text(json.dumps({"rl_step": step}) + "\n")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        os.replace(out, old)
    os.replace(partial, out)
    shutil.rmtree(old, ignore_errors=True)
    logging.info("exported RL step %d to %s", step, out)
