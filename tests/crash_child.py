"""scripts/train.py with a `kill -9` planted at one moment (for tests/test_crash_safety.py).

    python tests/crash_child.py KILL -- <scripts/train.py flags>

The process sends itself SIGKILL (no handler, no cleanup, no atexit: what an OOM killer
or a preempted VM does) at the moment KILL names, counted within this process:

    none               no planted kill (the parent may still kill it on a timer)
    save-write:N       in the N-th checkpoint save, while Orbax writes its files
    save-commit:N      in the N-th save, all files written, before the rename that commits it
    eval               in the first evaluation, after its first batch is scored
    export-write       in the export, the adapter written, the merged checkpoint not yet
    export-swap        the export written in full, before it replaces <workdir>/export
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TMP_SUFFIX = ".orbax-checkpoint-tmp"


def die(where: str) -> None:
    sys.stderr.write(f"crash_child: SIGKILL {where}\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def plant_in_save(n: int, phase: str) -> None:
    from etils.epath import gpath

    from rlvr_jax import checkpoints

    calls = {"save": 0, "writes": 0}
    save, open_, rename = checkpoints.save, gpath._GPath.open, os.rename

    def counting_save(manager, step, state, meta):
        calls["save"] += 1
        return save(manager, step, state, meta)

    def in_target_save() -> bool:
        return calls["save"] == n

    def open_killing(self, mode="r", **kwargs):
        if in_target_save() and "w" in mode and TMP_SUFFIX in str(self):
            calls["writes"] += 1
            if calls["writes"] == 2:  # a file written, the others not yet
                die(f"while writing checkpoint files ({self})")
        return open_(self, mode, **kwargs)

    def rename_killing(src, dst, *args, **kwargs):
        if in_target_save() and str(src).endswith(TMP_SUFFIX) and Path(dst).name.isdigit():
            die(f"before committing {dst}")
        return rename(src, dst, *args, **kwargs)

    checkpoints.save = counting_save
    if phase == "write":
        gpath._GPath.open = open_killing
    else:
        os.rename = rename_killing


def plant_in_eval() -> None:
    from rlvr_jax.observers.console import ConsoleObserver

    def on_eval_progress(self, step, done, total, correct):
        die(f"in the evaluation at step {step} ({done}/{total} questions scored)")

    ConsoleObserver.on_eval_progress = on_eval_progress


def plant_in_export(phase: str) -> None:
    from rlvr_jax import run_export

    if phase == "write":

        def export_merged(*args, **kwargs):
            die("in the export, between the adapter and the merged checkpoint")

        run_export.export_merged = export_merged
    else:
        replace = os.replace

        def replace_killing(src, dst, *args, **kwargs):
            if Path(dst).name == run_export.EXPORT_DIR and str(src).endswith(".partial"):
                die("with the export written, before it replaces export/")
            return replace(src, dst, *args, **kwargs)

        os.replace = replace_killing


def main() -> None:
    kill, sep, *flags = sys.argv[1:]
    assert sep == "--", "usage: crash_child.py KILL -- <train.py flags>"
    sys.path.insert(0, str(REPO))
    kind, _, arg = kill.partition(":")
    if kind in ("save-write", "save-commit"):
        plant_in_save(int(arg), kind.removeprefix("save-"))
    elif kind == "eval":
        plant_in_eval()
    elif kind in ("export-write", "export-swap"):
        plant_in_export(kind.removeprefix("export-"))
    else:
        assert kind == "none", kill
    script = str(REPO / "scripts" / "train.py")
    sys.argv = [script, *flags]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
