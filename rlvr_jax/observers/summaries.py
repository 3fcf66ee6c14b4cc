"""Compact console texts for an evaluation and for the end of a run (pure functions).

    eval @ step 12: accuracy 0.375 [0.297, 0.453] | format 0.920 | truncated 0.125 | 57.1 s
    eval @ step 12: 64/200 questions | accuracy so far 0.359

    run end @ step 36/36 after 21m05s
      last step: reward 0.412 | acc 0.375
      eval accuracy: final 0.410 [0.342, 0.478] @ step 36 | best 0.430 @ step 24
      checkpoint: runs/arithmetic/checkpoints/36
      exports:    runs/arithmetic/export
      metrics:    runs/arithmetic/metrics.jsonl
      plot:       python scripts/plot_metrics.py --metrics=runs/arithmetic/metrics.jsonl ...

The full table of every metric stays in metrics.jsonl and TensorBoard; the console shows
the numbers a person watches. Absent metrics leave their field out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rlvr_jax.observers.base import Metrics

ACCURACY = "eval/accuracy"
# (label, metric) of the eval summary line after the accuracy and its interval.
EVAL_FIELDS = (
    ("format", "eval/greedy/format_rate"),
    ("truncated", "eval/greedy/truncation_rate"),
)
EVAL_SECONDS = "eval/time_s"


@dataclasses.dataclass(frozen=True)
class EvalPoint:
    """One evaluation's accuracy and its interval (NaN bounds when not reported)."""

    step: int
    accuracy: float
    low: float
    high: float

    @classmethod
    def from_metrics(cls, step: int, metrics: Mapping[str, Any]) -> EvalPoint | None:
        if ACCURACY not in metrics:
            return None
        nan = float("nan")
        return cls(
            step,
            float(metrics[ACCURACY]),
            float(metrics.get(f"{ACCURACY}/ci_low", nan)),  # optional by design: a report field
            float(metrics.get(f"{ACCURACY}/ci_high", nan)),
        )

    def text(self) -> str:
        interval = "" if self.low != self.low else f" [{self.low:.3f}, {self.high:.3f}]"
        return f"{self.accuracy:.3f}{interval}"


def eval_points(rows: Iterable[Mapping[str, Any]], up_to_step: int) -> list[EvalPoint]:
    """The evaluations among metrics.jsonl rows with step <= `up_to_step` (a resume's past)."""
    points = []
    for row in rows:
        step = row.get("step")
        if isinstance(step, int) and step <= up_to_step:
            point = EvalPoint.from_metrics(step, row)
            if point is not None:
                points.append(point)
    return points


def eval_summary_line(step: int, metrics: Metrics) -> str:
    """One line per evaluation: accuracy with its interval, format rate, truncation, time."""
    parts = []
    point = EvalPoint.from_metrics(step, metrics)
    if point is not None:
        parts.append(f"accuracy {point.text()}")
    parts += [f"{label} {metrics[key]:.3f}" for label, key in EVAL_FIELDS if key in metrics]
    if EVAL_SECONDS in metrics:
        parts.append(f"{metrics[EVAL_SECONDS]:.1f} s")
    return f"eval @ step {step}: " + " | ".join(parts)


def eval_progress_line(step: int, done: int, total: int, correct: int) -> str:
    """The line-mode counterpart of the evaluation bar."""
    so_far = f" | accuracy so far {correct / done:.3f}" if done else ""
    return f"eval @ step {step}: {done}/{total} questions{so_far}"


def best_and_final(points: list[EvalPoint]) -> str:
    """`final 0.410 [..] @ step 36 | best 0.430 @ step 24` (best: the earliest maximum)."""
    final = points[-1]
    best = max(points, key=lambda p: (p.accuracy, -p.step))
    return f"final {final.text()} @ step {final.step} | best {best.accuracy:.3f} @ step {best.step}"


@dataclasses.dataclass(frozen=True)
class RunFiles:
    """Where a run's outputs are, for the summary; None = not written by this run."""

    checkpoint: Path | None
    exports: Path | None
    metrics: Path | None
    tensorboard: Path | None


def run_files(workdir: Path, jsonl: bool, tensorboard: bool) -> RunFiles:
    """The newest checkpoint and the exports found in `workdir`, and the enabled log files."""
    steps = [int(p.name) for p in (workdir / "checkpoints").glob("*") if p.name.isdigit()]
    export = workdir / "export"
    return RunFiles(
        checkpoint=workdir / "checkpoints" / str(max(steps)) if steps else None,
        exports=export if export.is_dir() else None,
        metrics=workdir / "metrics.jsonl" if jsonl else None,
        tensorboard=workdir / "tensorboard" if tensorboard else None,
    )


def run_summary(
    step: int,
    num_steps: int,
    elapsed: str,
    last_step_fields: str,
    points: list[EvalPoint],
    files: RunFiles,
) -> str:
    """The end-of-run block: progress, last step, eval accuracy, and where the files are."""
    lines = [f"run end @ step {step}/{num_steps} after {elapsed}"]
    if last_step_fields:
        lines.append(f"  last step: {last_step_fields}")
    if points:
        lines.append(f"  eval accuracy: {best_and_final(points)}")
    for label, path in (
        ("checkpoint", files.checkpoint),
        ("exports", files.exports),
        ("metrics", files.metrics),
        ("tensorboard", files.tensorboard),
    ):
        if path is not None:
            lines.append(f"  {label + ':':<12} {path}")
    if files.metrics is not None:
        plot = (
            f"python scripts/plot_metrics.py --metrics={files.metrics} --out={files.metrics.parent}"
        )
        lines.append(f"  {'plot:':<12} {plot}")
    return "\n".join(lines)
