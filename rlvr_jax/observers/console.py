"""Console sink: one progress line every `log_every` steps, samples, eval tables (absl logging).

    step 12/200 [#-----------] | reward 0.412 | acc 0.375 | 14.2 s/step | 310 tok/s | eta 44m29s

Seconds per step are measured here, wall clock between consecutive `on_step_end` calls
(so eval and checkpoint time count, as they do for the ETA), averaged over the last
`_WINDOW` steps; the first step after (re)start, which includes compilation, is shown
alone and kept out of the average. The other fields come from the step's metrics
(`PROGRESS_FIELDS`) and are left out when absent.

Lines go through absl logging at INFO: visible under `absl.app.run` (scripts/train.py);
elsewhere (a notebook, a test) call `absl.logging.set_verbosity(absl.logging.INFO)`.
"""

from __future__ import annotations

import collections
import json
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from absl import logging

from rlvr_jax.observers.base import Metrics, Observer, Sample, format_value
from rlvr_jax.observers.metrics import TOKENS_PER_S
from rlvr_jax.observers.registry import register_observer

if TYPE_CHECKING:
    from rlvr_jax.observers.config import ObserversConfig

# (label, metric name, format) of the progress line, after step and bar.
PROGRESS_FIELDS = (
    ("reward", "reward/total/mean", "{:.3f}"),
    ("acc", "reward/correct_frac", "{:.3f}"),
)
_BAR_WIDTH = 12
_WINDOW = 10  # steps in the s/step moving average
_PROMPT_CHARS = 160  # a sample's prompt is shown by its tail (the question, not the system text)
_COMPLETION_CHARS = 400  # and its completion by its head


def progress_bar(step: int, num_steps: int, width: int) -> str:
    """`[#####---------------]`: the done fraction of `num_steps`, clipped to [0, 1]."""
    done = 0 if num_steps <= 0 else round(width * min(max(step / num_steps, 0.0), 1.0))
    return "[" + "#" * done + "-" * (width - done) + "]"


def format_duration(seconds: float) -> str:
    """`42s`, `7m05s`, `3h12m`: compact, for ETAs."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def progress_line(
    step: int, num_steps: int, metrics: Metrics, seconds_per_step: float | None
) -> str:
    """The per-step console line; fields whose metric is absent are left out."""
    parts = [f"step {step}/{num_steps} {progress_bar(step, num_steps, _BAR_WIDTH)}"]
    for label, key, fmt in PROGRESS_FIELDS:
        if key in metrics:
            parts.append(f"{label} {fmt.format(metrics[key])}")
    if seconds_per_step is not None:
        parts.append(
            f"{seconds_per_step:.2f} s/step"
            if seconds_per_step < 10
            else f"{seconds_per_step:.1f} s/step"
        )
    if TOKENS_PER_S in metrics:
        parts.append(f"{metrics[TOKENS_PER_S]:.0f} tok/s")
    if seconds_per_step is not None and step < num_steps:
        parts.append(f"eta {format_duration(seconds_per_step * (num_steps - step))}")
    return " | ".join(parts)


def metrics_table(title: str, metrics: Metrics) -> str:
    """A two-column, name-sorted table under `title`."""
    width = max((len(key) for key in metrics), default=0)
    rows = [f"  {key:<{width}}  {format_value(metrics[key])}" for key in sorted(metrics)]
    return "\n".join([title, *rows])


def _one_line(text: str) -> str:
    return text.replace("\r", "").replace("\n", "\\n")


def samples_text(title: str, samples: list[Sample]) -> str:
    """Samples, one block each: rewards and answer, prompt tail, completion head."""
    lines = [title]
    for i, sample in enumerate(samples):
        rewards = " ".join(f"{name}={value:.3f}" for name, value in sample["rewards"].items())
        prompt = _one_line(str(sample["prompt"]))
        completion = _one_line(str(sample["completion"]))
        if len(prompt) > _PROMPT_CHARS:
            prompt = "..." + prompt[-_PROMPT_CHARS:]
        if len(completion) > _COMPLETION_CHARS:
            completion = completion[:_COMPLETION_CHARS] + "..."
        lines += [
            f"  [{i}] rewards: {rewards} | answer: {_one_line(str(sample['answer']))}",
            f"      prompt: {prompt}",
            f"      completion: {completion}",
        ]
    return "\n".join(lines)


class ConsoleObserver(Observer):
    """Human-readable progress through absl logging (INFO)."""

    name = "console"

    def __init__(self, log_every: int):
        self._log_every = log_every
        self._num_steps = 0
        self._start_time = 0.0
        self._last_time = 0.0
        self._first_step_seconds: float | None = None
        self._intervals: collections.deque[float] = collections.deque(maxlen=_WINDOW)

    def on_run_start(self, config: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self._num_steps = meta["num_steps"]
        self._start_time = self._last_time = time.perf_counter()
        self._first_step_seconds = None
        self._intervals.clear()
        start = meta["resumed_from_step"]
        how = f"resuming after step {start}" if start else "starting"
        extra = {
            key: value
            for key, value in meta.items()
            if key not in ("num_steps", "resumed_from_step")
        }
        logging.info(
            "run %s, %d steps planned%s",
            how,
            self._num_steps,
            f"; {json.dumps(extra, default=str)}" if extra else "",
        )

    def on_step_end(self, step: int, metrics: Metrics, samples: list[Sample] | None) -> None:
        now = time.perf_counter()
        interval, self._last_time = now - self._last_time, now
        if self._first_step_seconds is None:
            self._first_step_seconds = interval  # includes compilation: not averaged
            seconds_per_step = interval
        else:
            self._intervals.append(interval)
            seconds_per_step = sum(self._intervals) / len(self._intervals)
        if step % self._log_every == 0 or step >= self._num_steps:
            logging.info("%s", progress_line(step, self._num_steps, metrics, seconds_per_step))
        if samples:
            logging.info("%s", samples_text(f"samples @ step {step}", samples))

    def on_eval_end(self, step: int, metrics: Metrics, samples: list[Sample] | None) -> None:
        logging.info("%s", metrics_table(f"eval @ step {step}", metrics))
        if samples:
            logging.info("%s", samples_text(f"eval samples @ step {step}", samples))

    def on_run_end(self, step: int, final_metrics: Metrics) -> None:
        elapsed = format_duration(time.perf_counter() - self._start_time)
        title = f"run end @ step {step} after {elapsed}"
        logging.info("%s", metrics_table(title, final_metrics) if final_metrics else title)


@register_observer("console")
def make_console_observer(config: ObserversConfig, workdir: str | os.PathLike) -> Observer:
    """`observers.console`: progress every `observers.log_every` steps (the workdir is unused)."""
    return ConsoleObserver(log_every=config.log_every)
