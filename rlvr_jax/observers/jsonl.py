"""JSONL sink: machine-readable metrics and samples in the workdir.

Files (one JSON object per line, flushed after every event):
- `metrics.jsonl`: one row per RL step, `{"step": n, "reward/total/mean": ..., ...}`; an
  evaluation adds its own row, `{"step": n, "eval/accuracy": ...}` (same step as the train
  row it follows). Rows are told apart by their keys.
- `samples.jsonl`: `{"step", "split": "train" | "eval", "index", "prompt", "completion",
  "rewards", "answer"}` per logged sample.
- `runs.jsonl`: one row per process start: `{"time", "meta", "config"}` (the resume history).
- `final_metrics.json`: `{"step", ...final metrics}`, rewritten at run end.

Resume: the orchestrator restores the checkpoint of step k and calls `on_run_start` with
`meta["resumed_from_step"] = k`. Rows of metrics/samples with step > k were written by the
crashed process after its last checkpoint and are about to be produced again, so they are
dropped (the files are rewritten atomically), and appending continues: every step then
appears once. Rows with step <= k, including an eval at step k, are kept (the orchestrator
does not repeat them). A fresh start (k = 0) empties both files. A torn last line (a crash
mid-write) is dropped with a warning. Non-finite values are written as `NaN`/`Infinity`,
which Python's `json` reads back.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from absl import logging

from rlvr_jax.observers.base import Metrics, Observer, Sample
from rlvr_jax.observers.registry import register_observer

if TYPE_CHECKING:
    from rlvr_jax.observers.config import ObserversConfig

METRICS_FILE = "metrics.jsonl"
SAMPLES_FILE = "samples.jsonl"
RUNS_FILE = "runs.jsonl"
FINAL_FILE = "final_metrics.json"


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a JSONL file; lines that are not a JSON object are skipped with a warning."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if not isinstance(row, dict):
                logging.warning("%s:%d: not a JSON object, skipped (torn write?)", path, number)
                continue
            rows.append(row)
    return rows


def keep_rows_up_to(path: Path, last_step: int) -> int:
    """Rewrite `path` atomically keeping rows with step <= `last_step`; returns rows dropped."""
    if not path.exists():
        return 0
    rows = read_jsonl(path)
    kept = [row for row in rows if "step" in row and _is_step_up_to(row["step"], last_step)]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(_dumps(row) + "\n" for row in kept)
    os.replace(tmp, path)
    return len(rows) - len(kept)


def _is_step_up_to(step: Any, last_step: int) -> bool:
    return isinstance(step, int) and not isinstance(step, bool) and step <= last_step


def _dumps(row: Mapping[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, default=str)


class JsonlObserver(Observer):
    """Writes `metrics.jsonl`, `samples.jsonl`, `runs.jsonl`, `final_metrics.json` in `workdir`."""

    name = "jsonl"

    def __init__(self, workdir: str | os.PathLike):
        self._dir = Path(workdir)
        self._metrics: IO[str] | None = None
        self._samples: IO[str] | None = None

    @property
    def metrics_path(self) -> Path:
        return self._dir / METRICS_FILE

    @property
    def samples_path(self) -> Path:
        return self._dir / SAMPLES_FILE

    def on_run_start(self, config: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        last_step = meta["resumed_from_step"]
        for path in (self.metrics_path, self.samples_path):
            # A fresh start (0) keeps nothing: rows at step 0 (a baseline eval) are redone too.
            dropped = keep_rows_up_to(path, last_step if last_step > 0 else -1)
            if dropped:
                logging.info("%s: dropped %d rows after step %d", path, dropped, last_step)
        self._metrics = open(self.metrics_path, "a", encoding="utf-8")  # noqa: SIM115
        self._samples = open(self.samples_path, "a", encoding="utf-8")  # noqa: SIM115
        with open(self._dir / RUNS_FILE, "a", encoding="utf-8") as f:
            f.write(
                _dumps({"time": time.time(), "meta": dict(meta), "config": dict(config)}) + "\n"
            )

    def on_step_end(self, step: int, metrics: Metrics, samples: list[Sample] | None) -> None:
        self._write(step, metrics, samples, "train")

    def on_eval_end(self, step: int, metrics: Metrics, samples: list[Sample] | None) -> None:
        self._write(step, metrics, samples, "eval")

    def on_run_end(self, step: int, final_metrics: Metrics) -> None:
        tmp = self._dir / (FINAL_FILE + ".tmp")
        tmp.write_text(json.dumps({"step": step, **final_metrics}, indent=1) + "\n")
        os.replace(tmp, self._dir / FINAL_FILE)

    def close(self) -> None:
        for f in (self._metrics, self._samples):
            if f is not None:
                f.close()
        self._metrics = self._samples = None

    def _write(self, step: int, metrics: Metrics, samples: list[Sample] | None, split: str) -> None:
        if self._metrics is None or self._samples is None:
            raise RuntimeError("JsonlObserver: on_run_start must come first")
        self._metrics.write(_dumps({"step": step, **metrics}) + "\n")
        self._metrics.flush()
        if samples:
            for i, sample in enumerate(samples):
                row = {"step": step, "split": split, "index": i, **sample}
                self._samples.write(_dumps(row) + "\n")
            self._samples.flush()


@register_observer("jsonl")
def make_jsonl_observer(config: ObserversConfig, workdir: str | os.PathLike) -> Observer:
    """`observers.jsonl`: the JSONL files in `workdir`."""
    return JsonlObserver(workdir)
