"""The W&B sink against the real `wandb` package, offline: what it wrote, read back.

`WANDB_MODE=offline` makes W&B write the run into `<workdir>/wandb/offline-run-*/`: the
records (run and config, history rows, summary) in `run-<id>.wandb`, a LevelDB-style log
of W&B's own protobuf `Record`s (decoded here with `wandb.proto`), and each Table as a
JSON file under `files/media/table/`. No network: offline mode, the W&B server address
pointed at a closed loopback port, and this process's sockets refused anything but
loopback and Unix sockets (W&B's Go core, a child process, is covered by the first two).
"""

from __future__ import annotations

import json
import socket
import struct
import time
from pathlib import Path

import pytest
import wandb  # noqa: F401  (the test extra installs it; a missing package is a failure)
from config_sections import section
from google.protobuf.message import DecodeError
from wandb.proto import wandb_internal_pb2

from rlvr_jax.observers import ObserversConfig, make_observers
from rlvr_jax.observers.wandb import RUN_ID_FILE, SAMPLE_COLUMNS

_BLOCK = 32 * 1024  # LevelDB log block size
_HEADER = struct.Struct("<4sHB")  # ":W&B", magic 0xBEE1, version
_CHUNK = struct.Struct("<IHB")  # crc32c, length, type (1 full, 2 first, 3 middle, 4 last)


def read_records(path: Path) -> list[wandb_internal_pb2.Record]:
    """Every record of a `.wandb` file, in order."""
    data = path.read_bytes()
    ident, magic, _ = _HEADER.unpack_from(data)
    assert (ident, magic) == (b":W&B", 0xBEE1), f"{path} is not a W&B transaction log"
    records, pending, pos = [], b"", _HEADER.size
    while pos + _CHUNK.size <= len(data):
        if _BLOCK - pos % _BLOCK < _CHUNK.size:  # a block's tail too short for a header
            pos += _BLOCK - pos % _BLOCK
            continue
        _, length, kind = _CHUNK.unpack_from(data, pos)
        if kind == 0:  # zero padding to the end of the block
            pos += _BLOCK - pos % _BLOCK
            continue
        pending += data[pos + _CHUNK.size : pos + _CHUNK.size + length]
        pos += _CHUNK.size + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def finished_records(path: Path, timeout_s: float = 30.0) -> list[wandb_internal_pb2.Record]:
    """The records of a finished run: W&B's core process may still be writing the log
    when `run.finish()` returns, so read until its `exit` record is there."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            records = read_records(path)
            if any(r.WhichOneof("record_type") == "exit" for r in records):
                return records
        except DecodeError:  # a record being written
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{path}: no exit record after {timeout_s} s")
        time.sleep(0.1)


def _items(items) -> dict:
    """History/summary items as {key: value}; nested keys joined by '.'."""
    out = {}
    for item in items:
        key = item.key or ".".join(item.nested_key)
        out[key] = json.loads(item.value_json)
    return out


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb_cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # closed port: a call fails here
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    connect = socket.socket.connect

    def loopback_only(sock, address):
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and host not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"network access attempted: {address}")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    return tmp_path / "run"


def _config() -> ObserversConfig:
    return section(
        ObserversConfig,
        "observers",
        console=False,
        jsonl=False,
        tensorboard=False,
        wandb=True,
        wandb_project="rlvr-offline-test",
        wandb_run_name="offline-1",
        sample_every=1,
        num_samples_to_log=2,
    )


def _sample(step: int, split: str) -> dict:
    return {
        "prompt": f"{split} question {step}: 2+2?",
        "completion": f"<answer>{4 + step}</answer>",
        "rewards": {"answer_match": float(step == 0)},
        "answer": "4",
    }


def _run_dirs(workdir: Path, run_id: str) -> list[Path]:
    """offline-run-<time>-<id>, and -<id>-1, ... when two starts fall in the same second."""
    return sorted((workdir / "wandb").glob(f"offline-run-*-{run_id}*"))


def _run_dir(workdir: Path, run_id: str) -> Path:
    dirs = _run_dirs(workdir, run_id)
    assert dirs, f"no offline run {run_id} under {workdir / 'wandb'}"
    return dirs[-1]


def test_offline_run_records_config_metrics_eval_tables_and_samples(offline):
    config = {"seed": 7, "rl": {"beta": 0.04, "loss_type": "grpo"}, "max_steps": 2}
    with make_observers(_config(), offline, True) as group:
        group.on_run_start(config, {"num_steps": 2, "resumed_from_step": 0})
        for step in (1, 2):
            metrics = {"loss": 1.0 / step, "reward/total/mean": 0.25 * step}
            group.on_step_end(step, metrics, [_sample(step, "train")])
        eval_metrics = {"eval/accuracy": 0.375, "eval/accuracy/ci_low": 0.2}
        group.on_eval_end(2, eval_metrics, [_sample(2, "eval")])
        group.on_run_end(2, {"eval/accuracy": 0.375})

    run_id = (offline / RUN_ID_FILE).read_text().strip()
    run_dir = _run_dir(offline, run_id)
    records = finished_records(run_dir / f"run-{run_id}.wandb")

    # Config, project and name, as passed to wandb.init.
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert (run.run_id, run.project, run.display_name) == (run_id, "rlvr-offline-test", "offline-1")
    logged_config = {u.key: json.loads(u.value_json) for u in run.config.update}
    assert logged_config["seed"] == 7 and logged_config["max_steps"] == 2
    assert logged_config["rl"] == {"beta": 0.04, "loss_type": "grpo"}

    # Metrics: one history row per event, on our step axis.
    rows = [_items(r.history.item) for r in records if r.WhichOneof("record_type") == "history"]
    assert [row["step"] for row in rows] == [1, 2, 2]
    assert rows[0]["loss"] == 1.0 and rows[1]["reward/total/mean"] == 0.5
    assert rows[2]["eval/accuracy"] == 0.375 and rows[2]["eval/accuracy/ci_low"] == 0.2
    metric_defs = [r.metric for r in records if r.WhichOneof("record_type") == "metric"]
    assert any(m.glob_name == "*" and m.step_metric == "step" for m in metric_defs)

    # Samples and the eval table: Tables written as files, referenced from their rows.
    for row, key, step, split in (
        (rows[0], "samples/train", 1, "train"),
        (rows[1], "samples/train", 2, "train"),
        (rows[2], "samples/eval", 2, "eval"),
    ):
        assert row[f"{key}._type"] == "table-file"
        table = json.loads((run_dir / "files" / row[f"{key}.path"]).read_text())
        assert table["columns"] == list(SAMPLE_COLUMNS)
        ((logged_step, prompt, completion, rewards, answer),) = table["data"]
        assert (logged_step, prompt, answer) == (step, f"{split} question {step}: 2+2?", "4")
        assert completion == f"<answer>{4 + step}</answer>" and rewards == "answer_match=0.000"

    # Summary: run meta and the final metrics.
    summary = {}
    for r in records:
        if r.WhichOneof("record_type") == "summary":
            summary.update(_items(r.summary.update))
    assert summary["meta/num_steps"] == 2 and summary["meta/resumed_from_step"] == 0
    assert summary["eval/accuracy"] == 0.375 and summary["step"] == 2


def test_resumed_process_continues_the_same_offline_run(offline):
    with make_observers(_config(), offline, True) as group:
        group.on_run_start({"seed": 0}, {"num_steps": 2, "resumed_from_step": 0})
        group.on_step_end(1, {"loss": 1.0}, None)
    first = (offline / RUN_ID_FILE).read_text().strip()
    with make_observers(_config(), offline, True) as group:
        group.on_run_start({"seed": 0}, {"num_steps": 2, "resumed_from_step": 1})
        group.on_step_end(2, {"loss": 0.5}, None)
    assert (offline / RUN_ID_FILE).read_text().strip() == first
    runs = _run_dirs(offline, first)
    assert len(runs) == 2
    steps = [
        _items(r.history.item)["step"]
        for run_dir in runs
        for r in finished_records(run_dir / f"run-{first}.wandb")
        if r.WhichOneof("record_type") == "history"
    ]
    assert sorted(steps) == [1, 2]  # `wandb sync` of both directories makes one run
