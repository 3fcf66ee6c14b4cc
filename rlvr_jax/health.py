"""Training-health alerts: pure rules over each RL step's metrics (issue 15).

    state = HealthState.empty()
    state, alerts = check(state, step, metrics, exp.health)      # after every RL step

The rules, by the name `health.stop_on` lists and metrics.jsonl records (`alert/<name>` =
1.0 at every step the rule fires); `>` and `<` are strict:

    entropy_collapse  H < entropy_collapse * H_1, H = metrics[health.entropy_metric] and
                      H_1 its value at the first step the monitor saw it (step 1)
    reward_hacking    with the last W = hacking_window steps and h = W // 2, the rise of x
                      is mean(x over the last h steps) - mean(x over the first h steps);
                      fires for each reward/<label>/mean (label != total) whose rise is
                      > hacking_rise while reward/correct_frac's rise is <= hacking_correct_rise
    clip_frac         policy/clip_frac_low + policy/clip_frac_high > max_clip_frac
    kl                kl/mean > max_kl
    zero_std          frac_zero_std > max_zero_std (groups whose samples all score the same)
    truncation        completion/truncated_frac > max_truncated

A threshold of None turns its rule off. A metric the step lacks skips its rule (DPO logs no
clip fraction, entropy nor frac_zero_std; reward_hacking waits for W steps that all have
the reward and reward/correct_frac).

`HealthState` is the history the rules need: H_1, the last W steps' reward means, and the
alerts that fired at the previous step. It is small JSON, saved in each checkpoint's meta
beside the data-iterator position, so a resumed run alerts exactly as an uninterrupted
one. `Alert.onset` is True on the first of consecutive steps an alert fires: the loop
warns then, not at every step, while metrics.jsonl records every step.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlvr_jax.config_builder import ConfigError

logger = logging.getLogger(__name__)

ENTROPY_COLLAPSE = "entropy_collapse"
REWARD_HACKING = "reward_hacking"
CLIP_FRAC = "clip_frac"
KL = "kl"
ZERO_STD = "zero_std"
TRUNCATION = "truncation"
# Alert name -> the health key holding its threshold (None = the rule is off).
THRESHOLD_KEYS = {
    ENTROPY_COLLAPSE: "entropy_collapse",
    REWARD_HACKING: "hacking_rise",
    CLIP_FRAC: "max_clip_frac",
    KL: "max_kl",
    ZERO_STD: "max_zero_std",
    TRUNCATION: "max_truncated",
}
ALERTS = tuple(THRESHOLD_KEYS)
ALERT_PREFIX = "alert/"

CORRECT = "reward/correct_frac"
CLIP_LOW, CLIP_HIGH = "policy/clip_frac_low", "policy/clip_frac_high"
# Each simple bound: (alert, the metrics it sums, what it means and which key to turn).
BOUNDS = (
    (CLIP_FRAC, (CLIP_LOW, CLIP_HIGH), "the updates move the policy too far from the "
     "sampler's; lower optim.learning_rate or rl.num_iterations"),
    (KL, ("kl/mean",), "the policy drifts far from the reference; raise rl.beta or lower "
     "optim.learning_rate"),
    (ZERO_STD, ("frac_zero_std",), "most groups' samples all score the same, so they carry "
     "no gradient; raise sampling.num_samples or pick a task of fitting difficulty"),
    (TRUNCATION, ("completion/truncated_frac",), "most completions hit the token budget; "
     "raise sampling.max_new_tokens"),
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class HealthConfig:
    """Thresholds of the training-health alerts (`config.health`); None turns a rule off."""

    entropy_metric: str  # the entropy entropy_collapse watches (policy/entropy)
    entropy_collapse: float | None  # alert below this x its step-1 value, in (0, 1)
    hacking_window: int  # W >= 2: steps over which reward_hacking measures a rise
    hacking_rise: float | None  # alert when a reward's mean rises by more than this ...
    hacking_correct_rise: float  # ... while reward/correct_frac rises by at most this
    max_clip_frac: float | None  # policy/clip_frac_low + policy/clip_frac_high
    max_kl: float | None  # kl/mean
    max_zero_std: float | None  # frac_zero_std
    max_truncated: float | None  # completion/truncated_frac
    stop_on: tuple[str, ...]  # alerts that save a checkpoint and stop the run

    def __post_init__(self):
        if not self.entropy_metric:
            raise ConfigError("health.entropy_metric: must name a metric (policy/entropy)")
        e = self.entropy_collapse
        if e is not None and not 0.0 < e < 1.0:
            raise ConfigError(f"health.entropy_collapse must be in (0, 1) or None, got {e}")
        if self.hacking_window < 2:
            raise ConfigError(f"health.hacking_window must be >= 2, got {self.hacking_window}")
        for key in ("hacking_rise", "max_clip_frac", "max_kl", "max_zero_std", "max_truncated"):
            value = getattr(self, key)
            if value is not None and not value >= 0.0:
                raise ConfigError(f"health.{key} must be >= 0 or None, got {value}")
        for name in self.stop_on:
            if name not in THRESHOLD_KEYS:
                raise ConfigError(f"health.stop_on: unknown alert {name!r}; choose from {ALERTS}")
            if self.threshold(name) is None:
                key = THRESHOLD_KEYS[name]
                raise ConfigError(
                    f"health.stop_on: {name!r} can never fire, health.{key} is None (off)"
                )

    def threshold(self, name: str) -> float | None:
        return getattr(self, THRESHOLD_KEYS[name])


@dataclasses.dataclass(frozen=True)
class Alert:
    name: str  # the rule (ALERTS)
    metric: str
    value: float
    threshold: float
    step: int
    message: str  # "step 7: policy/entropy 0.05 < 0.1 x its step-1 value 0.9: ..."
    onset: bool  # the alert did not fire at the previous step


@dataclasses.dataclass(frozen=True)
class HealthState:
    """What the rules remember between steps; JSON via `to_json` / `from_json`."""

    entropy_start: tuple[str, int, float] | None  # (metric, step, value) when first seen
    window: tuple[dict[str, float], ...]  # per step, the last W: reward means, correct_frac
    active: tuple[tuple[str, str], ...]  # (alert, metric) that fired at the previous step

    @classmethod
    def empty(cls) -> HealthState:
        return cls(entropy_start=None, window=(), active=())

    def to_json(self) -> dict[str, Any]:
        return {
            "entropy_start": None if self.entropy_start is None else list(self.entropy_start),
            "window": [dict(point) for point in self.window],
            "active": [list(key) for key in self.active],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HealthState:
        start = data["entropy_start"]
        if start is not None:
            start = (str(start[0]), int(start[1]), float(start[2]))
        return cls(
            entropy_start=start,
            window=tuple({k: float(v) for k, v in point.items()} for point in data["window"]),
            active=tuple((str(name), str(metric)) for name, metric in data["active"]),
        )


def from_meta(meta: Mapping[str, Any]) -> HealthState:
    """The state saved in a checkpoint's meta; empty for checkpoints written before it."""
    return HealthState.from_json(meta["health"]) if "health" in meta else HealthState.empty()


def _num(x: float) -> str:
    return f"{x:.4g}"


def _alert(name: str, metric: str, value: float, threshold: float, step: int, text: str):
    return Alert(name, metric, value, threshold, step, f"step {step}: {text}", onset=True)


def _entropy(start, step: int, metrics: Mapping[str, float], cfg: HealthConfig) -> list[Alert]:
    metric = cfg.entropy_metric
    if cfg.entropy_collapse is None or metric not in metrics or start is None:
        return []
    _, first_step, first = start
    value, bound = float(metrics[metric]), cfg.entropy_collapse * first
    if not value < bound:
        return []
    text = (
        f"{metric} {_num(value)} < {cfg.entropy_collapse:g} x its step-{first_step} value "
        f"{_num(first)}: entropy collapse (the policy stops exploring; lower "
        "optim.learning_rate or raise sampling.temperature)"
    )
    return [_alert(ENTROPY_COLLAPSE, metric, value, bound, step, text)]


def rise(window: tuple[Mapping[str, float], ...], key: str) -> float | None:
    """mean(last h) - mean(first h) of `key` over the window, h = len // 2; None if absent."""
    if len(window) < 2 or any(key not in point for point in window):
        return None
    h = len(window) // 2
    return sum(p[key] for p in window[-h:]) / h - sum(p[key] for p in window[:h]) / h


def _hacking(window, step: int, metrics: Mapping[str, float], cfg: HealthConfig) -> list[Alert]:
    if cfg.hacking_rise is None or len(window) < cfg.hacking_window:
        return []
    correct = rise(window, CORRECT)
    if correct is None or correct > cfg.hacking_correct_rise:
        return []
    alerts = []
    for key in sorted(set(window[-1]) - {CORRECT}):
        value = rise(window, key)
        if value is None or not value > cfg.hacking_rise:
            continue
        corr = key.removesuffix("/mean") + "/corr_with_correct"
        link = f", {corr} {_num(metrics[corr])}" if corr in metrics else ""
        text = (
            f"{key} rose {_num(value)} > {cfg.hacking_rise:g} over steps "
            f"{step - len(window) + 1}-{step} while {CORRECT} rose {_num(correct)} <= "
            f"{cfg.hacking_correct_rise:g}{link}: a reward earned without solving the task "
            "(reward hacking?)"
        )
        alerts.append(_alert(REWARD_HACKING, key, value, cfg.hacking_rise, step, text))
    return alerts


def _bounds(step: int, metrics: Mapping[str, float], cfg: HealthConfig) -> list[Alert]:
    alerts = []
    for name, parts, meaning in BOUNDS:
        bound = cfg.threshold(name)
        if bound is None or any(part not in metrics for part in parts):
            continue
        value, metric = sum(float(metrics[part]) for part in parts), " + ".join(parts)
        if value > bound:
            text = f"{metric} {_num(value)} > {bound:g}: {meaning}"
            alerts.append(_alert(name, metric, value, bound, step, text))
    return alerts


def _reward_point(metrics: Mapping[str, float]) -> dict[str, float]:
    """What reward_hacking remembers of a step: reward/<label>/mean (not total), correct_frac."""
    return {
        key: float(value)
        for key, value in metrics.items()
        if key == CORRECT
        or (key.startswith("reward/") and key.endswith("/mean") and key != "reward/total/mean")
    }


def check(
    state: HealthState, step: int, metrics: Mapping[str, float], cfg: HealthConfig
) -> tuple[HealthState, tuple[Alert, ...]]:
    """The alerts of RL step `step` (its metrics after the update) and the next state."""
    start = state.entropy_start
    metric = cfg.entropy_metric
    if metric in metrics and (start is None or start[0] != metric):
        start = (metric, step, float(metrics[metric]))
    window = (*state.window, _reward_point(metrics))[-cfg.hacking_window :]
    found = [
        *_entropy(start, step, metrics, cfg),
        *_hacking(window, step, metrics, cfg),
        *_bounds(step, metrics, cfg),
    ]
    alerts = tuple(
        dataclasses.replace(a, onset=(a.name, a.metric) not in state.active) for a in found
    )
    active = tuple((a.name, a.metric) for a in alerts)
    return HealthState(entropy_start=start, window=window, active=active), alerts


def report(alerts: tuple[Alert, ...]) -> dict[str, float]:
    """Warns of each alert's onset; returns `alert/<name>` = 1.0 for the step's metrics."""
    for alert in alerts:
        if alert.onset:
            logger.warning("health alert %s: %s", alert.name, alert.message)
    return {ALERT_PREFIX + alert.name: 1.0 for alert in alerts}


def stop_alert(alerts: tuple[Alert, ...], cfg: HealthConfig) -> Alert | None:
    """The first alert that `health.stop_on` turns into a stop, if any."""
    return next((alert for alert in alerts if alert.name in cfg.stop_on), None)


class HealthStopError(RuntimeError):
    """An alert listed in `health.stop_on` fired; the run saved a checkpoint and stopped."""

    def __init__(self, alert: Alert, checkpoint: str | Path):
        self.alert, self.checkpoint = alert, Path(checkpoint)
        super().__init__(
            f"{alert.message}. health.stop_on lists {alert.name!r}: stopped after RL step "
            f"{alert.step} with checkpoint {checkpoint} saved; a resume continues from it "
            f"(change health.stop_on or health.{THRESHOLD_KEYS[alert.name]} to go on)"
        )
