"""Resume edge cases: exactly at an epoch boundary, at the last step, with a changed config."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_pipeline import read_jsonl, tiny_config, train_rows

from rlvr_jax import checkpoints
from rlvr_jax.errors import ConfigChangedError
from rlvr_jax.resume import SAFE_CHANGES, check_config, config_changes, is_safe
from rlvr_jax.run_export import MARKER, exported_step
from rlvr_jax.train import train_and_evaluate

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny.py"
# Four training rows and two prompts per step: an epoch is exactly two RL steps.
EPOCH = {
    "data.arithmetic.num_train": 4,
    "eval.every_steps": 0,
    "observers.tensorboard": False,
    "checkpoint.every_steps": 2,
}


def step_prompts(workdir: Path) -> dict[int, list[str]]:
    """The prompts of each RL step, from samples.jsonl (tiny logs every step's samples)."""
    prompts: dict[int, list[str]] = {}
    for row in read_jsonl(workdir / "samples.jsonl"):
        if row["split"] == "train":
            prompts.setdefault(row["step"], []).append(row["prompt"])
    return prompts


def state_arrays(workdir: Path, step: int) -> dict[str, np.ndarray]:
    import jax
    import orbax.checkpoint as ocp

    restored = ocp.StandardCheckpointer().restore(workdir / "checkpoints" / str(step) / "state")
    return {
        jax.tree_util.keystr(path): np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_leaves_with_path(restored)
    }


def checkpoint_meta(workdir: Path, step: int) -> dict:
    manager = checkpoints.make_manager(workdir, checkpoints.CheckpointConfig(1, 9, False))
    got = checkpoints.latest_meta(manager)
    assert got is not None and got[0] == step
    return got[1]


# --- an epoch boundary ---------------------------------------------------------------------


def test_resume_exactly_at_an_epoch_boundary_continues_with_the_next_epoch(tmp_path):
    """verl's bug: a resume at an epoch boundary skipped the epoch and exited 0."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_and_evaluate(tiny_config(max_steps=4, **EPOCH), straight)
    train_and_evaluate(tiny_config(max_steps=2, **EPOCH), resumed)
    assert checkpoint_meta(resumed, 2)["data_iterator"] == {"epoch": 1, "index": 0, "num_rows": 4}
    train_and_evaluate(tiny_config(max_steps=4, **EPOCH), resumed)

    prompts = step_prompts(resumed)
    assert prompts == step_prompts(straight)
    assert sorted(prompts) == [1, 2, 3, 4]
    first, second = prompts[1] + prompts[2], prompts[3] + prompts[4]
    assert sorted(first) == sorted(second) and len(set(second)) == 4  # the whole next epoch
    assert train_rows(resumed) == train_rows(straight)
    a, b = state_arrays(straight, 4), state_arrays(resumed, 4)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


# --- the last step -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A tiny run trained to its last step (2), exports written."""
    workdir = tmp_path_factory.mktemp("finished")
    train_and_evaluate(tiny_config(max_steps=2, **EPOCH), workdir)
    assert exported_step(workdir / "export") == 2
    return workdir


def _copy(run: Path, tmp_path: Path) -> Path:
    workdir = tmp_path / "run"
    shutil.copytree(run, workdir)
    return workdir


def test_resume_at_the_last_step_says_so_and_remakes_a_lost_export(finished_run, tmp_path, caplog):
    workdir = _copy(finished_run, tmp_path)
    shutil.rmtree(workdir / "export")
    (workdir / "export.partial").mkdir()  # what a kill during an export leaves
    caplog.set_level(logging.INFO)
    rows = (workdir / "metrics.jsonl").read_text()
    assert train_and_evaluate(tiny_config(max_steps=2, **EPOCH), workdir) == {}
    assert "nothing to do" in caplog.text and "at RL step 2 and max_steps is 2" in caplog.text
    assert exported_step(workdir / "export") == 2 and not (workdir / "export.partial").exists()
    for name in ("adapter/adapter_model.safetensors", "merged/model.safetensors", MARKER):
        assert (workdir / "export" / name).is_file(), name
    assert (workdir / "metrics.jsonl").read_text() == rows  # no step, no evaluation redone
    merged = workdir / "export" / "merged" / "model.safetensors"
    assert merged.read_bytes() == (finished_run / "export/merged/model.safetensors").read_bytes()


def test_resume_at_the_last_step_exits_0_and_keeps_a_current_export(finished_run, tmp_path):
    workdir = _copy(finished_run, tmp_path)
    marker = workdir / "export" / MARKER
    before = marker.stat().st_mtime_ns
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "train.py"),
        f"--config={TINY}",
        f"--workdir={workdir}",
        "--config.max_steps=2",
        *(f"--config.{key}={value}" for key, value in EPOCH.items()),
    ]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "nothing to do" in out.stderr and "exports of RL step 2 are in" in out.stderr
    assert marker.stat().st_mtime_ns == before  # not rewritten
    assert "run end @ step 2/2" in out.stderr


# --- a changed config ----------------------------------------------------------------------


def test_config_changes_are_named_and_only_safe_keys_pass():
    saved = {"max_steps": 2, "rl": {"beta": 0.04, "loss_type": "grpo"}, "eval": {"every": 2}}
    current = {"max_steps": 9, "rl": {"beta": 0.0, "loss_type": "grpo"}, "eval": {"every": 3}}
    current["optim"] = {"lr": 1e-3}
    assert config_changes(saved, current) == {
        "eval.every": (2, 3),
        "max_steps": (2, 9),
        "optim.lr": ("<absent>", 1e-3),
        "rl.beta": (0.04, 0.0),
    }
    assert is_safe("max_steps") and is_safe("eval.every") and is_safe("observers.wandb")
    assert not is_safe("rl.beta") and not is_safe("evaluation") and not is_safe("max_steps_x")
    with pytest.raises(ConfigChangedError) as error:
        check_config(saved, current, allow_changes=False, where="the checkpoint w/2")
    message = str(error.value)
    assert "optim.lr ('<absent>' -> 0.001), rl.beta (0.04 -> 0.0)" in message
    assert "max_steps (" not in message.split("Keys that may change")[0]
    assert "--config.checkpoint.allow_config_changes=True" in message
    assert all(key in message for key in SAFE_CHANGES)
    assert set(check_config(saved, current, allow_changes=True, where="w")) == {
        "eval.every",
        "max_steps",
        "optim.lr",
        "rl.beta",
    }


def test_resume_with_a_changed_config_is_refused_before_anything_is_written(finished_run, tmp_path):
    workdir = _copy(finished_run, tmp_path)
    files = {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()}
    changed = tiny_config(max_steps=2, **{**EPOCH, "rl.beta": 0.0, "optim.learning_rate": 1e-3})
    with pytest.raises(ConfigChangedError) as error:
        train_and_evaluate(changed, workdir)
    message = str(error.value)
    assert f"the checkpoint {workdir / 'checkpoints' / '2'}" in message
    assert "optim.learning_rate (0.0004 -> 0.001), rl.beta (0.04 -> 0.0)" in message
    assert {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()} == files

    # The override accepts them (at the last step: nothing to do, the export is current).
    allowed = tiny_config(
        max_steps=2,
        **{**EPOCH, "rl.beta": 0.0, "optim.learning_rate": 1e-3},
        **{"checkpoint.allow_config_changes": True},
    )
    assert train_and_evaluate(allowed, workdir) == {}


def test_resume_with_safe_changes_only_goes_on(finished_run, tmp_path):
    workdir = _copy(finished_run, tmp_path)
    safe = {**EPOCH, "eval.every_steps": 3, "observers.log_every": 2, "checkpoint.every_steps": 1}
    metrics = train_and_evaluate(tiny_config(max_steps=3, **safe), workdir)  # one more step
    assert "loss" in metrics
    assert [r["step"] for r in read_jsonl(workdir / "metrics.jsonl") if "loss" in r] == [1, 2, 3]
    assert exported_step(workdir / "export") == 3
