"""The observer event interface: what a training run tells its logging sinks, and when.

The orchestrator calls, in order:

    on_run_start(config, meta)                 once, before the first step
    on_step_end(step, metrics, samples)        after every RL step (step counts from 1)
    on_eval_progress(step, done, total, correct)  after each batch of an evaluation
    on_eval_end(step, metrics, samples)        after each evaluation ("eval/..." metric names)
    on_run_end(step, final_metrics)            once, after the last step
    close()                                    always (also after an exception)

`metrics` are slash-namespaced plain floats (`reward/total/mean`, `time/sample_s`).
`samples` are a few sampled completions, each a dict with the `SAMPLE_KEYS`:
`{"prompt": str, "completion": str, "rewards": {name: float}, "answer": str}`.
`meta` carries the `META_KEYS` (`num_steps`, the planned last step; `resumed_from_step`,
0 for a fresh run) plus anything JSON-serializable the orchestrator wants recorded.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

Metrics = dict[str, float]
Sample = dict[str, Any]

SAMPLE_KEYS = ("prompt", "completion", "rewards", "answer")
META_KEYS = ("num_steps", "resumed_from_step")
EVAL_PREFIX = "eval/"


class Observer:
    """A logging sink. Subclasses override the events they use; the rest do nothing.

    Sinks are the only stateful objects of the package (files, writers, clocks). They are
    built by `make_observers` and driven through an `ObserverGroup`, which validates and
    converts every event once, so a sink can trust its arguments.
    """

    name: str = "observer"  # the config key that enables it: observers.<name>

    def on_run_start(self, config: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        """Once per process start; `meta['resumed_from_step']` > 0 when resuming."""

    def on_step_end(self, step: int, metrics: Metrics, samples: list[Sample] | None) -> None:
        """After RL step `step`; `samples` only on sample-logging steps, else None."""

    def on_eval_progress(self, step: int, done: int, total: int, correct: int) -> None:
        """During the evaluation at `step`: `done` of `total` questions scored so far,
        `correct` of them right (greedy, the run's correctness verdict). For live display:
        the file sinks ignore it."""

    def on_eval_end(self, step: int, metrics: Metrics, samples: list[Sample] | None) -> None:
        """After an evaluation at `step`; every metric name starts with 'eval/'."""

    def on_run_end(self, step: int, final_metrics: Metrics) -> None:
        """After the last step (`step`), with the run's final metrics."""

    def close(self) -> None:
        """Release files and connections. Called exactly once."""


def to_metrics(metrics: Mapping[str, Any], what: str) -> Metrics:
    """Plain-float copy of `metrics`; numpy/JAX scalars are converted, anything else raises.

    `what` names the event in error messages (e.g. 'on_step_end metrics').
    """
    out: Metrics = {}
    for key, value in metrics.items():
        if not isinstance(key, str) or not key or key == "step":
            raise ValueError(
                f"{what}: metric names are non-empty strings other than 'step', got {key!r}"
            )
        if isinstance(value, (bool, str)):
            raise TypeError(f"{what}: {key!r} must be a number, got {value!r}")
        try:
            out[key] = float(value)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{what}: {key!r} must be a scalar number, got {type(value)}") from e
    return out


def check_samples(samples: Sequence[Mapping[str, Any]], what: str) -> list[Sample]:
    """List-of-dict copy of `samples`, each checked to hold the `SAMPLE_KEYS`."""
    out = []
    for i, sample in enumerate(samples):
        missing = [key for key in SAMPLE_KEYS if key not in sample]
        if missing:
            raise ValueError(f"{what}[{i}]: missing keys {missing}; a sample has {SAMPLE_KEYS}")
        rewards = {name: float(value) for name, value in sample["rewards"].items()}
        out.append({**sample, "rewards": rewards})
    return out


def check_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of `meta` after checking the `META_KEYS` are present and sensible."""
    missing = [key for key in META_KEYS if key not in meta]
    if missing:
        raise ValueError(f"on_run_start meta: missing keys {missing}; needs {META_KEYS}")
    for key in META_KEYS:
        value = meta[key]
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"on_run_start meta[{key!r}]: a non-negative int, got {value!r}")
    return {
        **meta,
        "num_steps": int(meta["num_steps"]),
        "resumed_from_step": int(meta["resumed_from_step"]),
    }


def format_value(value: float) -> str:
    """Compact human formatting for a metric value (console tables, text summaries)."""
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3e}"
    if float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.4f}"
