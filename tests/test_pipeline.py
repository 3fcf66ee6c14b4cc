"""The pipeline end to end on configs/tiny.py: files, exact resume, SIGTERM, config errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rlvr_jax.config import ExperimentConfig
from rlvr_jax.config_builder import ConfigError, sibling_config
from rlvr_jax.observers.compilations import COMPILE_COUNT, COMPILE_SECONDS
from rlvr_jax.observers.metrics import HOST_PEAK_MB
from rlvr_jax.train import check_batch_fits_mesh, train_and_evaluate

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny.py"
# Metrics that depend on wall clock or process memory, not on the computation.
NON_DETERMINISTIC = ("time/", "throughput/", "memory/", "eval/time_s", "compile/")


def tiny_config(**overrides):
    """configs/tiny.py with `overrides`; the persistent compilation cache off unless asked
    for (JAX's cache is per process: one test turning it on would make later tests' "first
    step compiles" assertions read cache hits)."""
    config = sibling_config(str(TINY), "tiny")
    overrides = {"compile_cache.enabled": False, **overrides}
    for key, value in overrides.items():
        node = config
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return config


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def train_rows(workdir: Path) -> dict[int, dict]:
    """Train metrics by step (eval rows excluded), without wall-clock metrics."""
    rows = {}
    for row in read_jsonl(workdir / "metrics.jsonl"):
        if any(k.startswith("loss") for k in row):
            rows[row["step"]] = {
                k: v for k, v in row.items() if not k.startswith(NON_DETERMINISTIC)
            }
    return rows


def checkpoint_state(workdir: Path, step: int) -> dict[str, np.ndarray]:
    """Every array of a saved train state, by path."""
    import orbax.checkpoint as ocp

    restored = ocp.StandardCheckpointer().restore(workdir / "checkpoints" / str(step) / "state")
    import jax

    return {
        jax.tree_util.keystr(path): np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_leaves_with_path(restored)
    }


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    """Four steps in one go (the reference for the resume test)."""
    workdir = tmp_path_factory.mktemp("straight")
    metrics = train_and_evaluate(tiny_config(max_steps=4), workdir)
    return workdir, metrics


def test_steps_after_the_first_do_not_recompile(straight_run):
    """Sampler, scorer and train step compile in RL step 1; steps 2..N reuse them."""
    workdir, _ = straight_run
    train = [r for r in read_jsonl(workdir / "metrics.jsonl") if "loss" in r]
    counts = {r["step"]: r[COMPILE_COUNT] for r in train}
    assert counts[1] >= 2  # at least the sampler and the train step (beta > 0: the scorer)
    assert {step: n for step, n in counts.items() if step > 1} == {2: 0, 3: 0, 4: 0}
    assert train[0][COMPILE_SECONDS] > 0


def test_end_to_end_writes_checkpoints_metrics_and_exports(straight_run):
    workdir, final = straight_run
    assert sorted(os.listdir(workdir / "checkpoints")) == ["2", "4"]
    rows = read_jsonl(workdir / "metrics.jsonl")
    train = [r for r in rows if "loss" in r]
    evals = [r for r in rows if "eval/accuracy" in r]
    assert [r["step"] for r in train] == [1, 2, 3, 4]
    assert [r["step"] for r in evals] == [0, 2, 4], "eval at step 0, every 2 steps and at the end"
    for key in (
        "loss",
        "reward/total/mean",
        "reward/correct_frac",
        "kl/mean",
        "policy/clip_frac_low",
        "policy/clip_frac_high",
        "policy/entropy",
        "grad/norm",
        "frac_zero_std",
        "completion/length_mean",
        "time/sample_s",
        "time/reward_s",
        "time/train_s",
        "throughput/sample_tokens_per_s",
        HOST_PEAK_MB,
    ):
        assert key in train[-1], f"metrics.jsonl lacks {key}"
    assert final["loss"] == train[-1]["loss"]
    assert (workdir / "samples.jsonl").stat().st_size > 0
    events = list((workdir / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    for name in (
        "adapter/adapter_config.json",
        "adapter/adapter_model.safetensors",
        "merged/config.json",
        "merged/model.safetensors",
        "merged/tokenizer.json",
    ):
        assert (workdir / "export" / name).is_file(), name


def test_resume_is_exact(straight_run, tmp_path):
    reference, _ = straight_run
    train_and_evaluate(tiny_config(max_steps=2), tmp_path)
    train_and_evaluate(tiny_config(max_steps=4), tmp_path)  # resumes from step 2
    assert train_rows(tmp_path) == train_rows(reference)
    a, b = checkpoint_state(reference, 4), checkpoint_state(tmp_path, 4)
    assert a.keys() == b.keys()
    for key in a:  # trainable params, optimizer state, step, rng: bitwise on CPU
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_sigterm_saves_a_checkpoint_that_resumes(tmp_path):
    workdir = tmp_path / "run"
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "train.py"),
        f"--config={TINY}",
        f"--workdir={workdir}",
        "--config.max_steps=1000",
        "--config.eval.every_steps=0",
        "--config.checkpoint.every_steps=1000",
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metrics = workdir / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (
        metrics.exists() and metrics.read_text().count("\n") >= 2
    ):
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr.decode()[-3000:]
    saved = [int(s) for s in os.listdir(workdir / "checkpoints") if s.isdigit()]
    assert len(saved) == 1 and saved[0] >= 2, saved
    # The saved run continues from there.
    train_and_evaluate(tiny_config(max_steps=saved[0] + 1, **{"eval.every_steps": 0}), workdir)
    steps = [r["step"] for r in read_jsonl(metrics) if "loss" in r]
    assert steps == list(range(1, saved[0] + 2))


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("data.name", "mnist", r"data\.name: unknown dataset 'mnist'"),
        ("rl.loss_type", "ppo2", r"rl\.loss_type: unknown loss 'ppo2'"),
        ("rl.advantage", "gae", r"rl\.advantage: unknown estimator 'gae'"),
        ("rl.num_microbatches", 3, r"rl\.num_microbatches"),
        ("model.dtype", "int8", r"model\.dtype"),
    ],
)
def test_config_errors_name_the_key(key, value, message):
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig.from_config_dict(tiny_config(**{key: value}))


def test_unknown_reward_is_named():
    config = tiny_config()
    config.rewards.fns = [dict(name="answer_matcher", weight=1.0, params={})]
    with pytest.raises(ConfigError, match=r"rewards\.fns\[.*\]\.name.*answer_matcher"):
        ExperimentConfig.from_config_dict(config)


def test_batch_must_split_over_the_mesh():
    exp = ExperimentConfig.from_config_dict(tiny_config())  # 2 prompts x 4 samples = 8 rows
    check_batch_fits_mesh(exp, 2)
    with pytest.raises(
        ConfigError, match=r"rl\.prompts_per_step \(2\) must be a multiple of the 8"
    ):
        check_batch_fits_mesh(exp, 8)  # 8 rows would split, 2 prompts do not
    wide = ExperimentConfig.from_config_dict(tiny_config(**{"rl.prompts_per_step": 8}))
    with pytest.raises(ConfigError, match=r"eval\.batch_size \(4\) must be a multiple of the 8"):
        check_batch_fits_mesh(wide, 8)
    micro = {"rl.prompts_per_step": 8, "eval.batch_size": 8, "rl.num_microbatches": 8}
    with pytest.raises(ConfigError, match=r"a micro-batch of 4 rows"):
        check_batch_fits_mesh(ExperimentConfig.from_config_dict(tiny_config(**micro)), 8)


def test_unknown_override_fails_before_anything_runs(tmp_path):
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "train.py"),
        f"--config={TINY}",
        f"--workdir={tmp_path}",
        "--config.rl.betta=0.0",
    ]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "betta" in out.stderr
    assert not (tmp_path / "checkpoints").exists()


def test_every_config_declares_every_key():
    for name in ("arithmetic", "gsm8k", "countdown", "tiny"):
        config = sibling_config(str(TINY), name)
        ExperimentConfig.from_config_dict(config)  # strict: undeclared keys raise
