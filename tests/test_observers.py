"""Observers: config validation, the group's contract, JSONL/TensorBoard/console/W&B sinks."""

from __future__ import annotations

import json
import logging
import struct
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from config_sections import section

from rlvr_jax.config_builder import ConfigError
from rlvr_jax.observers import (
    HOST_PEAK_MB,
    OBSERVERS,
    TOKENS_PER_S,
    Observer,
    ObserverError,
    ObserverGroup,
    ObserversConfig,
    host_peak_rss_mb,
    make_observers,
    memory_metrics,
    phase_key,
    timed,
    tokens_per_second,
)
from rlvr_jax.observers.config import SINKS
from rlvr_jax.observers.jsonl import read_jsonl

NUM_STEPS = 5


def _config(**overrides) -> ObserversConfig:
    """configs/arithmetic.py's `observers` group, every sink off, with overrides."""
    fields = dict(
        console=False,
        jsonl=False,
        tensorboard=False,
        wandb=False,
        wandb_project="",
        wandb_entity="",
        wandb_run_name="",
        sample_every=2,
        num_samples_to_log=2,
        log_every=1,
        third_party_logging=False,
    )
    return section(ObserversConfig, "observers", **{**fields, **overrides})


def _metrics(step: int) -> dict[str, float]:
    return {
        "reward/total/mean": 0.1 * step,
        "reward/correct_frac": 0.05 * step,
        "loss": np.float32(1.0 / step),  # numpy scalars are accepted and converted
        TOKENS_PER_S: 300.0 + step,
        "time/sample_s": 0.5,
    }


def _samples(step: int, n: int = 3) -> list[dict]:
    return [
        {
            "prompt": f"question {step}.{i}\nWhat is 2+2?",
            "completion": f"<answer>{4 + i}</answer>",
            "rewards": {"answer_match": float(i == 0), "format": 0.1},
            "answer": "4",
        }
        for i in range(n)
    ]


def _run(group: ObserverGroup, first: int, last: int, resumed_from: int, end: bool) -> None:
    """A fake run: steps first..last, an eval every 2 steps, optionally the run end."""
    group.on_run_start({"seed": 0}, {"num_steps": NUM_STEPS, "resumed_from_step": resumed_from})
    for step in range(first, last + 1):
        group.on_step_end(step, _metrics(step), _samples(step))
        if step % 2 == 0:
            group.on_eval_end(step, {"eval/accuracy": 0.5}, _samples(step, 1))
    if end:
        group.on_run_end(last, {"eval/accuracy": 0.5})


# --- config and factory ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"sample_every": -1}, "observers.sample_every"),
        ({"num_samples_to_log": 0}, "observers.num_samples_to_log"),
        ({"log_every": 0}, "observers.log_every"),
        ({"console": 1}, "observers.console"),
        ({"wandb": True}, "observers.wandb_project"),
    ],
)
def test_config_errors_name_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key):
        _config(**overrides)


def test_builder_rejects_unknown_keys():
    assert section(ObserversConfig, "observers", console=False).console is False
    with pytest.raises(ConfigError, match=r"^observers\.consle: unknown key"):
        section(ObserversConfig, "observers", consle=True)


def test_non_main_process_logs_nothing(tmp_path):
    workdir = tmp_path / "run"
    group = make_observers(_config(console=True, jsonl=True, tensorboard=True), workdir, False)
    assert group.names == ()
    assert not group.wants_samples(2)
    with group:
        _run(group, 1, 2, 0, end=True)
    assert not workdir.exists()


def test_make_observers_builds_the_enabled_sinks(tmp_path):
    group = make_observers(_config(console=True, jsonl=True), tmp_path, True)
    assert group.names == ("console", "jsonl")
    assert [group.wants_samples(s) for s in (1, 2, 3, 4)] == [False, True, False, True]
    group.close()
    group = make_observers(_config(tensorboard=True, jsonl=True, console=True), tmp_path, True)
    assert group.names == ("console", "jsonl", "tensorboard")  # SINKS order, not config order
    group.close()


def test_every_sink_key_has_a_registered_factory(tmp_path, monkeypatch):
    assert set(OBSERVERS) == set(SINKS)
    calls = []

    def factory(config, workdir):
        calls.append((config, workdir))
        return _Recorder()

    monkeypatch.setitem(OBSERVERS, "jsonl", factory)
    cfg = _config(jsonl=True)
    group = make_observers(cfg, tmp_path, True)
    assert group.names == ("recorder",) and calls == [(cfg, tmp_path)]
    group.close()


# --- the group's contract --------------------------------------------------------------------


class _Recorder(Observer):
    name = "recorder"

    def __init__(self):
        self.events = []
        self.closed = 0

    def on_step_end(self, step, metrics, samples):
        self.events.append((step, metrics, samples))

    def close(self):
        self.closed += 1


class _Broken(Observer):
    name = "broken"

    def on_step_end(self, step, metrics, samples):
        raise OSError("disk full")

    def close(self):
        raise OSError("cannot close")


def test_group_converts_and_throttles_samples():
    recorder = _Recorder()
    group = ObserverGroup([recorder], sample_every=2, num_samples_to_log=2)
    group.on_run_start({}, {"num_steps": 4, "resumed_from_step": 0})
    group.on_step_end(1, {"loss": np.float64(0.5)}, _samples(1))
    group.on_step_end(2, {"loss": np.array(0.25)}, _samples(2))
    (_, m1, s1), (_, m2, s2) = recorder.events
    assert m1 == {"loss": 0.5} and type(m1["loss"]) is float
    assert s1 is None  # step 1 is not a sample step
    assert [s["completion"] for s in s2] == ["<answer>4</answer>", "<answer>5</answer>"]
    group.close()
    group.close()
    assert recorder.closed == 1


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda g: g.on_step_end(1, {"loss": np.ones(3)}), "'loss' must be a scalar"),
        (lambda g: g.on_step_end(1, {"loss": "high"}), "'loss' must be a number"),
        (lambda g: g.on_step_end(1, {"step": 1.0}), "other than 'step'"),
        (lambda g: g.on_eval_end(1, {"accuracy": 1.0}), "must start with 'eval/'"),
        (lambda g: g.on_step_end(2, {}, [{"prompt": "p"}]), r"samples\[0\]: missing keys"),
        (lambda g: g.on_run_start({}, {"num_steps": 3}), "resumed_from_step"),
    ],
)
def test_group_rejects_malformed_events(call, match):
    group = ObserverGroup([_Recorder()], sample_every=1, num_samples_to_log=1)
    with pytest.raises((ValueError, TypeError), match=match):
        call(group)


def test_failing_observer_raises_with_its_name_and_others_still_close():
    recorder = _Recorder()
    group = ObserverGroup([recorder, _Broken()], sample_every=0, num_samples_to_log=1)
    with pytest.raises(ObserverError, match="observers.broken failed in on_step_end at step 3"):
        group.on_step_end(3, {"loss": 1.0})
    with pytest.raises(ObserverError, match="observers.broken failed in close"):
        group.close()
    assert recorder.closed == 1


# --- JSONL -----------------------------------------------------------------------------------


def test_jsonl_rows_samples_and_final(tmp_path):
    with make_observers(_config(jsonl=True), tmp_path, True) as group:
        _run(group, 1, 4, 0, end=True)
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert [row["step"] for row in rows] == [1, 2, 2, 3, 4, 4]
    train, eval_row = rows[1], rows[2]
    assert set(train) == {"step", *_metrics(2)}
    assert train["reward/total/mean"] == pytest.approx(0.2)
    assert eval_row == {"step": 2, "eval/accuracy": 0.5}
    samples = read_jsonl(tmp_path / "samples.jsonl")
    # train samples on steps 2 and 4 (sample_every=2), 2 of 3 each; 1 eval sample per eval
    assert [(s["step"], s["split"], s["index"]) for s in samples] == [
        (2, "train", 0),
        (2, "train", 1),
        (2, "eval", 0),
        (4, "train", 0),
        (4, "train", 1),
        (4, "eval", 0),
    ]
    assert samples[0]["rewards"] == {"answer_match": 1.0, "format": 0.1}
    assert {"prompt", "completion", "answer"} <= set(samples[0])
    final = json.loads((tmp_path / "final_metrics.json").read_text())
    assert final == {"step": 4, "eval/accuracy": 0.5}
    (run,) = read_jsonl(tmp_path / "runs.jsonl")
    assert run["meta"] == {"num_steps": NUM_STEPS, "resumed_from_step": 0}
    assert run["config"] == {"seed": 0}


def test_jsonl_resume_continues_the_files_without_duplicate_steps(tmp_path):
    cfg = _config(jsonl=True)
    with make_observers(cfg, tmp_path, True) as group:  # crashes after step 5, ckpt at 3
        _run(group, 1, 5, 0, end=False)
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 6, "loss": 0.')  # torn write
    with make_observers(cfg, tmp_path, True) as group:
        _run(group, 4, 5, 3, end=True)
    steps = [row["step"] for row in read_jsonl(tmp_path / "metrics.jsonl")]
    assert steps == [1, 2, 2, 3, 4, 4, 5]
    sample_steps = [row["step"] for row in read_jsonl(tmp_path / "samples.jsonl")]
    assert sample_steps == [2, 2, 2, 4, 4, 4]
    runs = read_jsonl(tmp_path / "runs.jsonl")
    assert [run["meta"]["resumed_from_step"] for run in runs] == [0, 3]

    with make_observers(cfg, tmp_path, True) as group:  # a fresh start begins new files
        _run(group, 1, 1, 0, end=False)
    assert [row["step"] for row in read_jsonl(tmp_path / "metrics.jsonl")] == [1]


# --- TensorBoard -----------------------------------------------------------------------------


def _read_events(logdir: Path) -> list:
    """Every event in the TFRecord files of `logdir` (length, crc, payload, crc per record)."""
    from tensorboardX.proto.event_pb2 import Event

    events = []
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            events.append(Event.FromString(data[pos + 12 : pos + 12 + length]))
            pos += 12 + length + 4
    return events


def test_tensorboard_scalars_text_and_resume_purge(tmp_path):
    cfg = _config(tensorboard=True)
    with make_observers(cfg, tmp_path, True) as group:
        _run(group, 1, 4, 0, end=True)
    events = _read_events(tmp_path / "tensorboard")
    scalars = {
        (value.tag, event.step): value.simple_value
        for event in events
        for value in event.summary.value
        if value.WhichOneof("value") == "simple_value"
    }
    assert {tag for tag, _ in scalars} == {*_metrics(1), "eval/accuracy"}
    assert scalars[("reward/total/mean", 3)] == pytest.approx(0.3)
    assert scalars[("eval/accuracy", 4)] == pytest.approx(0.5)
    texts = {
        (value.tag, event.step)
        for event in events
        for value in event.summary.value
        if value.WhichOneof("value") == "tensor"
    }
    assert ("samples/train/text_summary", 2) in texts
    assert ("samples/eval/text_summary", 4) in texts
    assert ("run/final/text_summary", 4) in texts

    with make_observers(cfg, tmp_path, True) as group:
        _run(group, 4, 4, 3, end=False)
    starts = [e.step for e in _read_events(tmp_path / "tensorboard") if e.session_log.status == 1]
    assert starts[-1] == 4  # TensorBoard hides older events at steps >= 4


# --- console ---------------------------------------------------------------------------------


def test_console_progress_samples_and_eval_table(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    with make_observers(_config(console=True, log_every=2), tmp_path, True) as group:
        _run(group, 1, NUM_STEPS, 0, end=True)
    lines = [record.getMessage() for record in caplog.records]
    progress = [line for line in lines if line.startswith("step ")]
    assert [line.split()[1] for line in progress] == ["2/5", "4/5", "5/5"]  # log_every, last
    line = progress[0]
    for field in ("reward 0.200", "acc 0.100", "s/step", "302 tok/s", "eta "):
        assert field in line, (field, line)
    assert "eta" not in progress[-1]
    text = caplog.text
    assert "samples @ step 2" in text and "answer_match=1.000" in text
    assert "<answer>4</answer>" in text and "What is 2+2?" in text
    assert "eval @ step 4: accuracy 0.500" in text
    assert "run end @ step 5/5" in text


# --- W&B -------------------------------------------------------------------------------------


def test_wandb_missing_names_the_key_and_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # makes `import wandb` fail
    with pytest.raises(ImportError, match=r"observers.wandb.*pip install 'rlvr_jax\[wandb\]'"):
        make_observers(_config(wandb=True, wandb_project="p"), tmp_path, True)
    # other processes never import it
    assert make_observers(_config(wandb=True, wandb_project="p"), tmp_path, False).names == ()


class _FakeRun:
    def __init__(self, kwargs):
        self.kwargs, self.rows, self.metric_defs = kwargs, [], []
        self.summary, self.finished = {}, False

    def define_metric(self, name, **kwargs):
        self.metric_defs.append((name, kwargs))

    def log(self, row):
        self.rows.append(row)

    def finish(self):
        self.finished = True


def _fake_wandb(runs: list) -> types.ModuleType:
    module = types.ModuleType("wandb")
    module.Table = lambda columns, data: ("table", tuple(columns), data)

    def init(**kwargs):
        runs.append(_FakeRun(kwargs))
        return runs[-1]

    module.init = init
    return module


def test_wandb_calls_against_a_recording_fake(tmp_path, monkeypatch):
    """Our side of the W&B contract; the real package is exercised by the offline test."""
    runs: list[_FakeRun] = []
    monkeypatch.setitem(sys.modules, "wandb", _fake_wandb(runs))
    cfg = _config(wandb=True, wandb_project="proj", wandb_run_name="r1")
    with make_observers(cfg, tmp_path, True) as group:
        _run(group, 1, 2, 0, end=True)
    with make_observers(cfg, tmp_path, True) as group:
        _run(group, 2, 2, 1, end=False)
    first, resumed = runs
    assert first.kwargs["project"] == "proj" and first.kwargs["entity"] is None
    assert first.kwargs["name"] == "r1" and first.kwargs["config"] == {"seed": 0}
    assert resumed.kwargs["id"] == first.kwargs["id"]  # same W&B run after resume
    assert len(first.kwargs["id"]) == 8 and first.kwargs["id"].isalnum()
    assert ("*", {"step_metric": "step"}) in first.metric_defs
    assert [row["step"] for row in first.rows] == [1, 2, 2]
    assert first.rows[0]["reward/total/mean"] == pytest.approx(0.1)
    assert first.rows[1]["samples/train"][1] == (
        "step",
        "prompt",
        "completion",
        "rewards",
        "answer",
    )
    assert first.summary["eval/accuracy"] == 0.5 and first.finished


# --- metric helpers --------------------------------------------------------------------------


def test_timed_accumulates_per_phase():
    times: dict[str, float] = {}
    for _ in range(2):
        with timed("sample", times):
            pass
    with pytest.raises(RuntimeError), timed("train", times):
        raise RuntimeError("the time still counts")
    assert set(times) == {"time/sample_s", "time/train_s"} and all(t >= 0 for t in times.values())
    assert phase_key("reward") == "time/reward_s"
    with pytest.raises(ValueError, match="phase name"):
        phase_key("a/b")


def test_throughput_and_memory():
    assert tokens_per_second(300, 1.5) == 200.0
    with pytest.raises(ValueError, match="seconds must be > 0"):
        tokens_per_second(10, 0.0)
    rss = host_peak_rss_mb()
    assert 10 < rss < 1e6  # MiB: a Python process with numpy is tens of MiB at least
    metrics = memory_metrics()  # CPU reports no device peak; accelerators add memory/device_peak_mb
    assert metrics[HOST_PEAK_MB] >= rss
    assert set(metrics) <= {HOST_PEAK_MB, "memory/device_peak_mb"}
