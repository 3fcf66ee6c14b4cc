"""Console sink: progress of RL steps and evaluations, samples, compact eval and run summaries.

On a terminal (stderr is a TTY) two live tqdm bars (progress.py), one for RL steps and one
for an evaluation in progress:

    train ██████▍          12/200 | reward 0.412 | acc 0.375 | 14.2 s/step | 310 tok/s | eta 44m29s
    eval @ step 12 ███▏    64/200 | acc 0.359

Elsewhere (CI, a file, a pipe) plain lines instead, one every `log_every` steps and one per
evaluation batch:

    step 12/200 [#-----------] | reward 0.412 | acc 0.375 | 14.2 s/step | 310 tok/s | eta 44m29s
    eval @ step 12: 64/200 questions | accuracy so far 0.359

Then one line per evaluation and a block at the end of the run (summaries.py):

    eval @ step 12: accuracy 0.375 [0.297, 0.453] | format 0.920 | truncated 0.125 | 57.1 s
    run end @ step 36/36 after 21m05s  (+ last step, best/final eval accuracy, file paths)

Seconds per step are measured here, wall clock between consecutive `on_step_end` calls
(so eval and checkpoint time count, as they do for the ETA), averaged over the last
`_WINDOW` steps; the first step after (re)start, which includes compilation, is shown
alone and kept out of the average. The other fields come from the step's metrics
(`PROGRESS_FIELDS`) and are left out when absent. Every metric is in metrics.jsonl and
TensorBoard; the console shows the few a person watches.

Lines go through absl logging at INFO: visible under `absl.app.run` (scripts/train.py);
elsewhere (a notebook, a test) call `absl.logging.set_verbosity(absl.logging.INFO)`.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from absl import logging

from rlvr_jax.observers import summaries
from rlvr_jax.observers.base import Metrics, Observer, Sample
from rlvr_jax.observers.jsonl import METRICS_FILE, read_jsonl
from rlvr_jax.observers.metrics import TOKENS_PER_S
from rlvr_jax.observers.progress import Bar, is_terminal, logs_above_bars
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
    bar = f"step {step}/{num_steps} {progress_bar(step, num_steps, _BAR_WIDTH)}"
    return " | ".join([bar, *progress_fields(step, num_steps, metrics, seconds_per_step)])


def progress_fields(
    step: int, num_steps: int, metrics: Metrics, seconds_per_step: float | None
) -> list[str]:
    """reward, acc, s/step, tok/s and eta of a step (the text of the live bar too)."""
    parts = []
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
    return parts


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
    """Human-readable progress: live bars on a terminal, absl INFO lines elsewhere."""

    name = "console"

    def __init__(
        self,
        log_every: int,
        workdir: str | os.PathLike,
        logs: tuple[bool, bool],
        live_stream: IO[str] | None,
    ):
        """`logs`: whether metrics.jsonl and tensorboard/ are written (the run-end summary
        names them); `live_stream`: draw tqdm bars there (a terminal); None: plain lines."""
        self._log_every = log_every
        self._workdir = Path(workdir)
        self._logs = logs
        self._live_stream = live_stream
        self._num_steps = 0
        self._start_time = 0.0
        self._last_time = 0.0
        self._first_step_seconds: float | None = None
        self._intervals: collections.deque[float] = collections.deque(maxlen=_WINDOW)
        self._evals: list[summaries.EvalPoint] = []
        self._train_bar: Bar | None = None
        self._eval_bar: Bar | None = None
        self._exit = contextlib.ExitStack()

    def on_run_start(self, config: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self._num_steps = meta["num_steps"]
        self._start_time = self._last_time = time.perf_counter()
        self._first_step_seconds = None
        self._intervals.clear()
        start = meta["resumed_from_step"]
        self._evals = self._past_evals(start)
        how = f"resuming after step {start}" if start else "starting"
        extra = {key: value for key, value in meta.items() if key not in _META_NOT_SHOWN}
        logging.info(
            "run %s, %d steps planned%s",
            how,
            self._num_steps,
            f"; {json.dumps(extra, default=str)}" if extra else "",
        )
        if self._live_stream is not None and self._train_bar is None:
            self._exit.enter_context(logs_above_bars(self._live_stream))
            self._train_bar = Bar("train", self._num_steps, start, self._live_stream)
            self._train_bar.show(start, "")

    def on_step_end(self, step: int, metrics: Metrics, samples: list[Sample] | None) -> None:
        now = time.perf_counter()
        interval, self._last_time = now - self._last_time, now
        if self._first_step_seconds is None:
            self._first_step_seconds = interval  # includes compilation: not averaged
            seconds_per_step = interval
        else:
            self._intervals.append(interval)
            seconds_per_step = sum(self._intervals) / len(self._intervals)
        if self._train_bar is not None:
            fields = progress_fields(step, self._num_steps, metrics, seconds_per_step)
            self._train_bar.show(step, " | ".join(fields))
        elif step % self._log_every == 0 or step >= self._num_steps:
            logging.info("%s", progress_line(step, self._num_steps, metrics, seconds_per_step))
        if samples:
            logging.info("%s", samples_text(f"samples @ step {step}", samples))

    def on_eval_progress(self, step: int, done: int, total: int, correct: int) -> None:
        if self._live_stream is None:
            if done < total:  # the last batch: the summary line follows at once
                logging.info("%s", summaries.eval_progress_line(step, done, total, correct))
            return
        if self._eval_bar is None:
            self._eval_bar = Bar(f"eval @ step {step}", total, 0, self._live_stream, leave=False)
        self._eval_bar.show(done, f"acc {correct / done:.3f}" if done else "")

    def on_eval_end(self, step: int, metrics: Metrics, samples: list[Sample] | None) -> None:
        if self._eval_bar is not None:
            self._eval_bar.close()
            self._eval_bar = None
        point = summaries.EvalPoint.from_metrics(step, metrics)
        if point is not None:
            self._evals.append(point)
        logging.info("%s", summaries.eval_summary_line(step, metrics))
        if samples:
            logging.info("%s", samples_text(f"eval samples @ step {step}", samples))

    def on_run_end(self, step: int, final_metrics: Metrics) -> None:
        self._close_bars()
        text = summaries.run_summary(
            step,
            self._num_steps,
            format_duration(time.perf_counter() - self._start_time),
            " | ".join(progress_fields(step, step, final_metrics, None)),
            self._evals,
            summaries.run_files(self._workdir, *self._logs),
        )
        logging.info("%s", text)

    def close(self) -> None:
        self._close_bars()

    def _close_bars(self) -> None:
        for bar in (self._eval_bar, self._train_bar):
            if bar is not None:
                bar.close()
        self._eval_bar = self._train_bar = None
        self._exit.close()

    def _past_evals(self, resumed_from: int) -> list[summaries.EvalPoint]:
        """A resumed run's evaluations so far, from metrics.jsonl (when the file exists)."""
        path = self._workdir / METRICS_FILE
        if resumed_from == 0 or not path.is_file():
            return []
        return summaries.eval_points(read_jsonl(path), resumed_from)


# Meta keys the run-start line leaves out: planned steps are in its text, provenance
# (package versions, git commit) is recorded in runs.jsonl.
_META_NOT_SHOWN = ("num_steps", "resumed_from_step", "provenance")


@register_observer("console")
def make_console_observer(config: ObserversConfig, workdir: str | os.PathLike) -> Observer:
    """`observers.console`: live bars when stderr is a terminal, else a line every
    `observers.log_every` steps; the run-end summary names the files in `workdir`."""
    live = sys.stderr if is_terminal(sys.stderr) else None
    logs = (config.jsonl, config.tensorboard)
    return ConsoleObserver(config.log_every, workdir, logs, live)
