"""`ObserverGroup`: fans each event out to the enabled sinks, after validating it once.

Failure policy: a sink that raises stops the run with an `ObserverError` naming the sink
and the event (`observers.jsonl failed in on_step_end at step 12: ...`). Losing the
metrics of a long run silently is worse than stopping it; W&B and TensorBoard retry
their own I/O internally, so what reaches us is a real fault (disk full, bad value).
`close()` closes every sink even if some fail, then raises the first failure.

Sampled completions are throttled here, not in the orchestrator's loop: on steps where
`wants_samples(step)` is false, samples passed to `on_step_end` are dropped, and at most
`num_samples_to_log` of them (the first ones) reach the sinks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rlvr_jax.observers.base import (
    EVAL_PREFIX,
    Observer,
    Sample,
    check_meta,
    check_samples,
    to_metrics,
)


class ObserverError(RuntimeError):
    """A sink failed; the message names it (`observers.<name>`) and the event."""


class ObserverGroup:
    """The orchestrator's single handle on logging. Use as a context manager to close it.

    An empty group (every sink disabled, or a non-main process) is a no-op that does not even
    read the metrics (no float conversion, so no device sync on other hosts).
    """

    def __init__(
        self, observers: Sequence[Observer], *, sample_every: int, num_samples_to_log: int
    ):
        names = [obs.name for obs in observers]
        if len(set(names)) != len(names):
            raise ValueError(f"ObserverGroup: duplicate observer names {names}")
        self._observers = tuple(observers)
        self._sample_every = sample_every
        self._num_samples = num_samples_to_log
        self._closed = False

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the active sinks, e.g. ('console', 'jsonl')."""
        return tuple(obs.name for obs in self._observers)

    def wants_samples(self, step: int) -> bool:
        """Whether samples passed with `on_step_end(step, ...)` will be logged."""
        return bool(self._observers) and self._sample_every > 0 and step % self._sample_every == 0

    def on_run_start(self, config: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        """`config`: the run's config as plain dict; `meta`: see `base.META_KEYS`."""
        if not self._observers:
            return
        meta = check_meta(meta)
        self._emit("on_run_start", None, dict(config), meta)

    def on_step_end(
        self, step: int, metrics: Mapping[str, Any], samples: Sequence[Sample] | None = None
    ) -> None:
        """After RL step `step` (>= 1) with its metrics; samples are throttled here."""
        if not self._observers:  # other processes: no conversion, no device sync
            return
        metrics = to_metrics(metrics, f"on_step_end(step={step}) metrics")
        if samples is not None and self.wants_samples(step):
            samples = check_samples(
                samples[: self._num_samples], f"on_step_end(step={step}) samples"
            )
        else:
            samples = None
        self._emit("on_step_end", step, step, metrics, samples)

    def on_eval_progress(self, step: int, done: int, total: int, correct: int) -> None:
        """During the evaluation at `step`: questions done of total, correct among them."""
        if not self._observers:
            return
        if not 0 <= correct <= done <= total:
            raise ValueError(
                f"on_eval_progress(step={step}): need 0 <= correct ({correct}) <= done "
                f"({done}) <= total ({total})"
            )
        self._emit("on_eval_progress", step, step, int(done), int(total), int(correct))

    def on_eval_end(
        self, step: int, metrics: Mapping[str, Any], samples: Sequence[Sample] | None = None
    ) -> None:
        """After an evaluation at `step`; metric names must start with 'eval/'."""
        if not self._observers:
            return
        metrics = to_metrics(metrics, f"on_eval_end(step={step}) metrics")
        bad = [key for key in metrics if not key.startswith(EVAL_PREFIX)]
        if bad:
            raise ValueError(
                f"on_eval_end(step={step}): metric names must start with 'eval/': {bad}"
            )
        if samples is not None:
            samples = check_samples(
                samples[: self._num_samples], f"on_eval_end(step={step}) samples"
            )
        self._emit("on_eval_end", step, step, metrics, samples)

    def on_run_end(self, step: int, final_metrics: Mapping[str, Any]) -> None:
        """After the last step, with whatever summary the orchestrator has (may be empty)."""
        if not self._observers:
            return
        self._emit("on_run_end", step, step, to_metrics(final_metrics, "on_run_end metrics"))

    def close(self) -> None:
        """Close every sink (each exactly once), then raise the first failure if any."""
        if self._closed:
            return
        self._closed = True
        failures: list[tuple[str, Exception]] = []
        for obs in self._observers:
            try:
                obs.close()
            except Exception as e:  # close the others, then re-raise
                failures.append((obs.name, e))
        if failures:
            name, error = failures[0]
            raise ObserverError(f"observers.{name} failed in close: {error!r}") from error

    def __enter__(self) -> ObserverGroup:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _emit(self, event: str, step: int | None, *args: Any) -> None:
        if self._closed:
            raise RuntimeError(f"ObserverGroup.{event}: the group is closed")
        for obs in self._observers:
            try:
                getattr(obs, event)(*args)
            except Exception as e:
                where = "" if step is None else f" at step {step}"
                raise ObserverError(f"observers.{obs.name} failed in {event}{where}: {e!r}") from e
