"""Crash safety: kill -9 at seeded random moments, an unwritable workdir, a full disk.

The SIGKILL test runs scripts/train.py on configs/tiny.py (8 RL steps, a checkpoint every
2, an evaluation every 4) through tests/crash_child.py, kills it 10 times at seeded random
moments (on a timer, inside a checkpoint save, inside an evaluation, inside the export)
and restarts it each time with the same command. Every restart must resume from the
newest checkpoint that is complete on disk (judged here, independently of the code under
test), and the final train state, metrics and exports must equal a straight run's, bit
for bit. The kill points are printed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rlvr_jax import checkpoints
from rlvr_jax.checkpoints import CheckpointConfig
from rlvr_jax.config_builder import sibling_config
from rlvr_jax.errors import CheckpointWriteError, WorkdirError
from rlvr_jax.train import train_and_evaluate

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny.py"
CHILD = REPO / "tests" / "crash_child.py"
STEPS, EVERY, EVAL_EVERY = 8, 2, 4
FLAGS = [
    f"--config={TINY}",
    f"--config.max_steps={STEPS}",
    f"--config.checkpoint.every_steps={EVERY}",
    f"--config.eval.every_steps={EVAL_EVERY}",
    "--config.observers.tensorboard=False",
]
NON_DETERMINISTIC = ("time/", "throughput/", "memory/", "eval/time_s", "compile/")
SEED = 19


# --- what is on disk, judged independently of rlvr_jax.checkpoints ------------------------


def complete_steps(workdir: Path) -> list[int]:
    """Steps whose directory was committed: renamed from tmp, Orbax's markers all present."""
    root = workdir / "checkpoints"
    steps = []
    for path in root.glob("*") if root.is_dir() else []:
        markers = [path / "commit_success.txt", *(path / i / "commit_success.txt" for i in ITEMS)]
        if path.name.isdigit() and all(m.is_file() for m in markers):
            steps.append(int(path.name))
    return sorted(steps)


ITEMS = ("state", "meta")


def leftovers(workdir: Path) -> list[str]:
    root = workdir / "checkpoints"
    tmp = sorted(p.name for p in root.glob("*tmp*")) if root.is_dir() else []
    return tmp + sorted(p.name for p in workdir.glob("export.*"))


def read_rows(path: Path) -> list[dict]:
    """JSONL rows; a torn last line (the writer was killed) is skipped."""
    rows = []
    for line in path.read_text().splitlines() if path.exists() else []:
        with contextlib.suppress(json.JSONDecodeError):
            rows.append(json.loads(line))
    return rows


def train_rows(workdir: Path) -> dict[int, dict]:
    rows = {}
    for row in read_rows(workdir / "metrics.jsonl"):
        if "loss" in row:
            assert row["step"] not in rows, f"step {row['step']} twice in metrics.jsonl"
            rows[row["step"]] = {
                k: v for k, v in row.items() if not k.startswith(NON_DETERMINISTIC)
            }
    return rows


def eval_steps(workdir: Path) -> list[int]:
    return [r["step"] for r in read_rows(workdir / "metrics.jsonl") if "eval/accuracy" in r]


def state_arrays(workdir: Path, step: int) -> dict[str, np.ndarray]:
    import jax
    import orbax.checkpoint as ocp

    restored = ocp.StandardCheckpointer().restore(workdir / "checkpoints" / str(step) / "state")
    return {
        jax.tree_util.keystr(path): np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_leaves_with_path(restored)
    }


def export_files(workdir: Path) -> dict[str, bytes]:
    root = workdir / "export"
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# --- the SIGKILL test --------------------------------------------------------------------


class Launcher:
    """Starts tests/crash_child.py on one workdir, each launch logging to its own file."""

    def __init__(self, workdir: Path, logs: Path, cache: Path):
        self.workdir, self.logs, self.count = workdir, logs, 0
        logs.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            # Restarts reuse compiled programs (the same executables: numbers unchanged).
            "JAX_COMPILATION_CACHE_DIR": str(cache),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
        }

    def start(self, kill: str) -> tuple[subprocess.Popen, Path]:
        self.count += 1
        log = self.logs / f"launch_{self.count:02d}_{kill.replace(':', '_')}.log"
        cmd = [sys.executable, str(CHILD), kill, "--", *FLAGS, f"--workdir={self.workdir}"]
        with open(log, "w") as out:
            proc = subprocess.Popen(
                cmd, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        return proc, log

    def run(self, kill: str, timeout: float = 600) -> tuple[int, str]:
        proc, log = self.start(kill)
        return proc.wait(timeout=timeout), log.read_text()


# Timer kills wait for a moment of the run, then a random delay: the child's console line
# after its imports (the model is loading next), its run-start line (the checkpoint is
# restored; an evaluation or the first step's compilation is next), or n new train rows.
AFTER_IMPORTS, AFTER_START = "JAX devices", "] run "
MOMENTS = {AFTER_IMPORTS: "the imports", AFTER_START: "the run-start line"}


def kill_on_timer(
    proc: subprocess.Popen, log: Path, workdir: Path, done: int, after: str | int, delay: float
) -> int:
    """SIGKILL `delay` s after `after` (a console text, or that many train rows past step
    `done` in metrics.jsonl); returns the exit status."""
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        if isinstance(after, str):
            reached = after in log.read_text()
        else:
            reached = len([s for s in train_rows(workdir) if s > done]) >= after
        if reached:
            time.sleep(delay)
            break
        time.sleep(0.02)
    proc.kill()  # SIGKILL
    return proc.wait(timeout=60)


def draw_kill(rng: random.Random, kind: str, done: int) -> tuple[str, str | int, float]:
    """(crash_child KILL, after, delay) of a `kind` kill for a restart at step `done`;
    `after` and `delay` are for timer kills (see `kill_on_timer`)."""
    left = STEPS - done
    if kind == "timer":
        after = rng.choice([AFTER_IMPORTS, AFTER_START, *range(1, max(1, left - 2))])
        delay = rng.uniform(0.0, 3.0) if after == AFTER_IMPORTS else rng.uniform(0.0, 0.3)
        return "none", after, delay
    if kind == "eval":
        return "eval", 0, 0.0
    return f"{kind}:{rng.randint(1, left // EVERY)}", 0, 0.0


def training_kills(rng: random.Random) -> list[str]:
    """8 kinds, in a seeded order: each planted kill once, timer kills for the rest."""
    kinds = ["save-write", "save-commit", "eval", *["timer"] * 5]
    rng.shuffle(kinds)
    return kinds


def resumed_from(workdir: Path) -> int:
    return read_rows(workdir / "runs.jsonl")[-1]["meta"]["resumed_from_step"]


@pytest.mark.slow
def test_sigkill_at_ten_random_moments_loses_nothing(tmp_path, capsys):
    cache = tmp_path / "jax_cache"
    reference = tmp_path / "straight"
    rc, log = Launcher(reference, tmp_path / "logs_straight", cache).run("none")
    assert rc == 0, log[-3000:]

    workdir = tmp_path / "killed"
    launcher = Launcher(workdir, tmp_path / "logs_killed", cache)
    rng = random.Random(SEED)
    kinds = training_kills(rng)
    kills: list[str] = []
    # 8 kills while training, then 2 inside the export (it only runs once training is done).
    while len(kills) < 10:
        done = max(complete_steps(workdir), default=0)
        in_export = len(kills) >= 8
        if in_export:
            kill, after, delay = ("export-write" if len(kills) == 8 else "export-swap"), 0, 0.0
        else:
            assert done < STEPS, f"the run finished after {len(kills)} kills: {kills}"
            kill, after, delay = draw_kill(rng, kinds[len(kills)], done)
        before = leftovers(workdir)
        starts = len(read_rows(workdir / "runs.jsonl"))
        proc, log = launcher.start(kill)
        if kill == "none":
            rc = kill_on_timer(proc, log, workdir, done, after, delay)
            moment = f"{after} new step(s)" if isinstance(after, int) else MOMENTS[after]
            where = f"on a timer: {delay:.2f} s after {moment}"
        else:
            rc = proc.wait(timeout=600)
            lines = [x for x in log.read_text().splitlines() if x.startswith("crash_child:")]
            where = lines[-1].removeprefix("crash_child: SIGKILL ") if lines else "?"
        text = log.read_text()
        assert rc == -9, f"launch {launcher.count} ({kill}) was not killed: rc={rc}\n{text[-3000:]}"
        if len(read_rows(workdir / "runs.jsonl")) > starts:  # it got as far as on_run_start
            assert resumed_from(workdir) == done, (kill, done, text[-3000:])
        kills.append(
            f"kill {len(kills) + 1:2d}: restart at step {done}"
            f"{' (leftovers ' + ', '.join(before) + ')' if before else ''}; SIGKILL {where}; "
            f"now complete: {complete_steps(workdir)}, leftovers: {leftovers(workdir)}"
        )

    done = max(complete_steps(workdir))
    rc, text = launcher.run("none")
    assert rc == 0, text[-3000:]
    assert resumed_from(workdir) == done
    with capsys.disabled():
        print(f"\nSIGKILL points (seed {SEED}, {launcher.count} launches):")
        print("\n".join(kills))

    assert complete_steps(workdir)[-1] == STEPS and not leftovers(workdir)
    assert train_rows(workdir) == train_rows(reference)
    assert eval_steps(workdir) == eval_steps(reference) == [0, 4, 8]
    a, b = state_arrays(reference, STEPS), state_arrays(workdir, STEPS)
    assert a.keys() == b.keys()
    for key in a:  # params, Adam moments, step, rng: bitwise
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert export_files(workdir) == export_files(reference)


# --- an unwritable workdir ---------------------------------------------------------------


@contextlib.contextmanager
def unwritable(path: Path):
    """`path` made unwritable: permissions, else (root ignores them) the immutable flag."""
    path.mkdir(parents=True)
    path.chmod(0o555)
    undo = [lambda: path.chmod(0o755)]
    if os.access(path, os.W_OK):  # root
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            undo.pop()()
            pytest.skip("cannot make a directory unwritable here (root, no chattr +i)")
        undo.append(lambda: subprocess.run(["chattr", "-i", str(path)], check=True))
    try:
        yield path
    finally:
        for step in reversed(undo):
            step()


def test_unwritable_workdir_fails_at_once_naming_the_path(tmp_path):
    with unwritable(tmp_path / "ro") as workdir:
        config = sibling_config(str(TINY), "tiny")
        with pytest.raises(WorkdirError, match=f"workdir {workdir} is not writable"):
            train_and_evaluate(config, workdir)
        nested = workdir / "run"  # a workdir that cannot be created
        with pytest.raises(WorkdirError, match=f"workdir {nested} is not writable"):
            train_and_evaluate(config, nested)
        cmd = [sys.executable, str(REPO / "scripts" / "train.py"), f"--config={TINY}"]
        out = subprocess.run(
            [*cmd, f"--workdir={workdir}"], cwd=REPO, capture_output=True, text=True, timeout=300
        )
        assert list(workdir.iterdir()) == []
    assert out.returncode == 1, out.stderr[-3000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("E")]
    assert len(errors) == 1 and f"workdir {workdir} is not writable" in errors[0], out.stderr
    assert "Traceback" not in out.stderr


# --- a full disk during a save -----------------------------------------------------------


def _state(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"a": rng.normal(size=(60_000,)).astype(np.float32), "b": np.arange(7)}


def _restore(manager) -> tuple[dict, dict]:
    restored = checkpoints.restore_latest(manager, _state(0))
    assert restored is not None
    return restored


def _assert_previous_intact(manager, workdir: Path, error: pytest.ExceptionInfo) -> None:
    message = str(error.value)
    assert f"could not write checkpoint step 2 in {workdir / 'checkpoints'}" in message
    assert "No space left on device" in message and "step 1 is intact" in message
    assert complete_steps(workdir) == [1] and not leftovers(workdir)
    state, meta = _restore(manager)
    assert meta == {"rl_step": 1}
    np.testing.assert_array_equal(np.asarray(state["a"]), _state(1)["a"])


def test_disk_full_during_a_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    """A patched writer: Orbax's file writes of step 2 fail with ENOSPC."""
    from etils.epath import gpath

    workdir = tmp_path / "run"
    manager = checkpoints.make_manager(workdir, CheckpointConfig(1, 3, False))
    checkpoints.save(manager, 1, _state(1), {"rl_step": 1})
    open_ = gpath._GPath.open

    def full_disk(self, mode="r", **kwargs):
        if "w" in mode and "2.orbax-checkpoint-tmp" in str(self):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return open_(self, mode, **kwargs)

    monkeypatch.setattr(gpath._GPath, "open", full_disk)
    with pytest.raises(CheckpointWriteError) as error:
        checkpoints.save(manager, 2, _state(2), {"rl_step": 2})
    monkeypatch.undo()
    _assert_previous_intact(manager, workdir, error)


# Orbax's writer thread finds its event loop closed after the failed save: noise, not ours.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_real_full_disk_during_a_save_keeps_the_previous_checkpoint(tmp_path):
    """A 1 MiB tmpfs fills while step 2's arrays are written (by TensorStore, in C++)."""
    mount = tmp_path / "small_disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        workdir = mount / "run"
        manager = checkpoints.make_manager(workdir, CheckpointConfig(1, 3, False))
        checkpoints.save(manager, 1, _state(1), {"rl_step": 1})
        free = shutil.disk_usage(mount).free
        (mount / "filler").write_bytes(b"\0" * max(0, free - 64 * 1024))
        with pytest.raises(CheckpointWriteError) as error:
            checkpoints.save(manager, 2, _state(2), {"rl_step": 2})
        _assert_previous_intact(manager, workdir, error)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
