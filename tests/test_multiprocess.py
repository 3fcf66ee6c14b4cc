"""Two processes train exactly like one: jax.distributed on loopback, gloo CPU collectives.

configs/tiny.py runs as 1 process x 4 CPU devices (the reference) and as 2 processes x 2
devices launched the way a cluster would launch them (`JAX_COORDINATOR_ADDRESS`,
`JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`). Every train and eval metric must match within
1e-5 and the exported LoRA factors within 1e-6. Then a 2-process run is stopped by
SIGTERM to process 1 alone: both processes stop after the same step and save once; a
2-process resume reaches the reference's last step with the same metrics and factors.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny.py"
STEPS = 4
NON_DETERMINISTIC = ("time/", "throughput/", "memory/", "eval/time_s", "compile/")
# The tiny config, 4 prompts a step (2 per process, 1 per device), and a reward that varies
# across a random model's completions (their length in characters), so the advantages and
# gradients carry signal: with the answer reward alone every group scores 0 and the updates
# are Adam-normalized rounding noise, which no two reduction orders agree on.
CONFIG = """
from rlvr_jax.config_builder import sibling_config


def get_config():
    c = sibling_config({tiny!r}, "tiny")
    c.rl.prompts_per_step = 4
    c.eval.batch_size = 4
    c.eval.every_steps = 2
    c.observers.tensorboard = False
    c.rewards.fns = [
        dict(name="answer_match", weight=1.0, params=dict(mode="lenient")),
        dict(name="length_penalty", weight=1.0, params=dict(unit="chars", max_len=64)),
    ]
    return c
"""

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "tiny_multiprocess.py"
    path.write_text(CONFIG.format(tiny=str(TINY)))
    return path


def launch(
    config: Path, workdir: Path, devices: int, env_extra: dict, *flags: str
) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
        JAX_PLATFORMS="cpu",
        **env_extra,
    )
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "train.py"),
        f"--config={config}",
        f"--workdir={workdir}",
        *flags,
    ]
    return subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def launch_pair(config: Path, workdir: Path, *flags: str) -> list[subprocess.Popen]:
    address = f"127.0.0.1:{free_port()}"
    return [
        launch(
            config,
            workdir,
            2,
            {
                "JAX_COORDINATOR_ADDRESS": address,
                "JAX_NUM_PROCESSES": "2",
                "JAX_PROCESS_ID": str(i),
            },
            *flags,
        )
        for i in range(2)
    ]


def wait(procs: list[subprocess.Popen], timeout: float = 600) -> None:
    deadline = time.time() + timeout
    for proc in procs:
        try:
            _, stderr = proc.communicate(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
        assert proc.returncode == 0, stderr.decode()[-4000:]


def metrics_by_step(workdir: Path) -> dict[tuple[int, str], dict]:
    rows = {}
    for line in (workdir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        kind = "eval" if any(k.startswith("eval/") for k in row) else "train"
        rows[(row["step"], kind)] = {
            k: v for k, v in row.items() if not k.startswith(NON_DETERMINISTIC)
        }
    return rows


def train_steps_done(workdir: Path) -> int:
    path = workdir / "metrics.jsonl"
    if not path.exists():
        return 0
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]
    return sum(1 for row in rows if "loss" in row)


def adapter(workdir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(workdir / "export" / "adapter" / "adapter_model.safetensors")


def assert_rows_match(got: dict, want: dict, keys) -> None:
    for key in keys:
        assert got[key].keys() == want[key].keys(), key
        for name, value in want[key].items():
            if isinstance(value, float):
                np.testing.assert_allclose(
                    got[key][name], value, rtol=1e-5, atol=1e-5, err_msg=f"{key} {name}"
                )
            else:
                assert got[key][name] == value, (key, name)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, config_file):
    workdir = tmp_path_factory.mktemp("one_process")
    wait([launch(config_file, workdir, 4, {}, f"--config.max_steps={STEPS}")])
    return workdir


def test_two_processes_equal_one(reference, config_file, tmp_path):
    workdir = tmp_path / "two"
    wait(launch_pair(config_file, workdir, f"--config.max_steps={STEPS}"))
    want, got = metrics_by_step(reference), metrics_by_step(workdir)
    assert sorted(got) == sorted(want)
    assert {k for k in want if k[1] == "eval"} == {(0, "eval"), (2, "eval"), (4, "eval")}
    assert_rows_match(got, want, sorted(want))
    mine, theirs = adapter(workdir), adapter(reference)
    assert mine.keys() == theirs.keys()
    for name, value in theirs.items():
        np.testing.assert_allclose(mine[name], value, atol=1e-6, err_msg=name)


def test_sigterm_to_one_process_stops_both_and_resumes(reference, config_file, tmp_path):
    workdir = tmp_path / "stopped"
    procs = launch_pair(
        config_file, workdir, "--config.max_steps=1000", "--config.checkpoint.every_steps=1000"
    )
    deadline = time.time() + 600
    while time.time() < deadline and not train_steps_done(workdir):
        assert all(p.poll() is None for p in procs), procs[0].stderr.read().decode()[-3000:]
        time.sleep(0.1)
    procs[1].send_signal(signal.SIGTERM)
    wait(procs)
    saved = sorted(int(s) for s in os.listdir(workdir / "checkpoints") if s.isdigit())
    assert len(saved) == 1 and 1 <= saved[0] < STEPS, saved
    wait(launch_pair(config_file, workdir, f"--config.max_steps={STEPS}"))
    want, got = metrics_by_step(reference), metrics_by_step(workdir)
    train_steps = sorted(k for k in got if k[1] == "train")
    assert train_steps == [(s, "train") for s in range(1, STEPS + 1)]
    assert_rows_match(got, want, train_steps)
    mine, theirs = adapter(workdir), adapter(reference)
    for name, value in theirs.items():
        np.testing.assert_allclose(mine[name], value, atol=1e-6, err_msg=name)
