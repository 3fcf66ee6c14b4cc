"""Training-health alerts: each rule on controlled metric sequences, and the stop path.

The rules are pure (rlvr_jax/health.py), so most tests feed `check` hand-made metrics. The
last tests train configs/tiny.py with an alert that must fire and is listed in
`health.stop_on`: the run saves, stops with an error naming the alert and the step, and
resumes from that checkpoint.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from config_sections import section
from tiny_rl import fast_compile

from rlvr_jax import health
from rlvr_jax.config_builder import ConfigError, sibling_config
from rlvr_jax.health import HealthConfig, HealthState, HealthStopError

REPO = Path(__file__).resolve().parents[1]
# A healthy run: the measured 36 GRPO steps of configs/arithmetic.py (BUILD_NOTES.md).
HEALTHY_RUN = REPO / "docs" / "arithmetic_grpo_metrics.jsonl"


def cfg(**overrides) -> HealthConfig:
    return section(HealthConfig, "health", **overrides)


def run(sequence: list[dict], config: HealthConfig, state: HealthState | None = None, start=1):
    """Alerts by step of `check` over metric dicts for steps start, start + 1, ..., and the
    last state."""
    state = state or HealthState.empty()
    by_step = {}
    for step, metrics in enumerate(sequence, start):
        state, by_step[step] = health.check(state, step, metrics, config)
    return by_step, state


def fired(by_step) -> dict[int, list[str]]:
    return {step: [a.name for a in alerts] for step, alerts in by_step.items() if alerts}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_measured_healthy_run_raises_nothing_at_the_defaults():
    rows = [r for r in read_jsonl(HEALTHY_RUN) if "loss" in r]
    assert len(rows) == 36 and "policy/entropy" in rows[0] and "frac_zero_std" in rows[0]
    by_step, _ = run(rows, cfg())
    assert fired(by_step) == {}


def test_entropy_collapse_against_the_step_1_value():
    entropies = [0.9, 0.5, 0.2, 0.05, 0.3]
    by_step, state = run([{"policy/entropy": h} for h in entropies], cfg())
    assert fired(by_step) == {4: ["entropy_collapse"]}  # 0.2 > 0.09 at step 3: not yet
    (alert,) = by_step[4]
    assert alert.message.startswith(
        "step 4: policy/entropy 0.05 < 0.1 x its step-1 value 0.9: entropy collapse"
    )
    assert (alert.metric, alert.value, alert.step) == ("policy/entropy", 0.05, 4)
    assert alert.threshold == pytest.approx(0.09)
    assert state.entropy_start == ("policy/entropy", 1, 0.9)


def test_entropy_collapse_watches_the_configured_metric():
    sequence = [{"policy/entropy": 1.0, "policy/entropy_top20": h} for h in (3.0, 0.2)]
    by_step, _ = run(sequence, cfg(entropy_metric="policy/entropy_top20"))
    assert [a.metric for a in by_step[2]] == ["policy/entropy_top20"]


def rewards(fmt: float, correct: float, total: float = 0.0) -> dict[str, float]:
    return {
        "reward/format_exact/mean": fmt,
        "reward/format_exact/corr_with_correct": -0.1,
        "reward/correct_frac": correct,
        "reward/total/mean": total,
    }


def test_reward_hacking_a_shaping_reward_rises_while_correctness_does_not():
    config = cfg(hacking_window=4, hacking_rise=0.2)
    hacked = [rewards(0.0, 0.3), rewards(0.1, 0.3), rewards(0.5, 0.3), rewards(0.6, 0.2)]
    by_step, _ = run(hacked, config)
    assert fired(by_step) == {4: ["reward_hacking"]}  # a rise needs W = 4 steps
    (alert,) = by_step[4]
    assert alert.metric == "reward/format_exact/mean"
    assert alert.value == pytest.approx((0.5 + 0.6) / 2 - (0.0 + 0.1) / 2)
    assert alert.message == (
        "step 4: reward/format_exact/mean rose 0.5 > 0.2 over steps 1-4 while "
        "reward/correct_frac rose -0.05 <= 0, reward/format_exact/corr_with_correct -0.1: "
        "a reward earned without solving the task (reward hacking?)"
    )
    # Healthy: correctness rises with the shaping reward. `total` is never a shaping reward.
    learning = [rewards(f, c, total=f) for f, c in ((0.0, 0.1), (0.1, 0.1), (0.5, 0.4), (0.6, 0.5))]
    assert fired(run(learning, config)[0]) == {}
    assert fired(run(hacked, cfg(hacking_window=4, hacking_rise=0.6))[0]) == {}


@pytest.mark.parametrize(
    "name, key, metrics, hint",
    [
        ("clip_frac", "max_clip_frac", {"policy/clip_frac_low": 0.15, "policy/clip_frac_high": 0.1},
         "lower optim.learning_rate or rl.num_iterations"),
        ("kl", "max_kl", {"kl/mean": 0.7}, "raise rl.beta"),
        ("zero_std", "max_zero_std", {"frac_zero_std": 1.0}, "carry no gradient"),
        ("truncation", "max_truncated", {"completion/truncated_frac": 0.75},
         "raise sampling.max_new_tokens"),
    ],
)  # fmt: skip
def test_bounds_fire_above_and_not_at_or_below(name, key, metrics, hint):
    value = sum(metrics.values())
    metric = " + ".join(metrics)
    (alert,) = health.check(HealthState.empty(), 3, metrics, cfg(**{key: value - 0.01}))[1]
    assert (alert.name, alert.metric, alert.step) == (name, metric, 3)
    assert alert.value == pytest.approx(value)
    assert alert.message.startswith(f"step 3: {metric} {value:.4g} > {value - 0.01:g}: ")
    assert hint in alert.message
    assert health.check(HealthState.empty(), 3, metrics, cfg(**{key: value}))[1] == ()
    assert health.check(HealthState.empty(), 3, metrics, cfg(**{key: None}))[1] == ()


def test_a_missing_metric_skips_its_rule():
    """DPO logs no entropy, clip fraction, KL nor frac_zero_std: only truncation applies."""
    dpo = {"dpo/accuracy": 0.5, "reward/correct_frac": 0.1, "completion/truncated_frac": 0.9}
    strict = cfg(max_clip_frac=0.0, max_kl=0.0, max_zero_std=0.0, hacking_window=2)
    by_step, state = run([dpo, dpo, dpo], strict)
    assert fired(by_step) == {1: ["truncation"], 2: ["truncation"], 3: ["truncation"]}
    assert state.entropy_start is None
    only_low = {"policy/clip_frac_low": 0.9}  # the rule sums both clip fractions
    assert health.check(HealthState.empty(), 1, only_low, strict)[1] == ()


def test_disabled_rules_never_fire():
    off = {key: None for key in health.THRESHOLD_KEYS.values()}
    wild = {
        **rewards(0.0, 0.5),
        "policy/entropy": 1.0,
        "kl/mean": 9.0,
        "policy/clip_frac_low": 1.0,
        "policy/clip_frac_high": 1.0,
        "frac_zero_std": 1.0,
        "completion/truncated_frac": 1.0,
    }
    crash = {**wild, **rewards(3.0, 0.0), "policy/entropy": 0.0}
    by_step, _ = run([wild, wild, crash, crash], cfg(hacking_window=4, **off))
    assert fired(by_step) == {}


def test_onset_warns_once_and_every_step_is_recorded(caplog):
    config = cfg(max_truncated=0.5)
    high, low = {"completion/truncated_frac": 0.9}, {"completion/truncated_frac": 0.1}
    by_step, _ = run([high, high, low, high], config)
    assert {s: [a.onset for a in alerts] for s, alerts in by_step.items()} == {
        1: [True],
        2: [False],
        3: [],
        4: [True],
    }
    with caplog.at_level(logging.WARNING):
        logged = [health.report(alerts) for alerts in by_step.values()]
    assert logged == [
        {"alert/truncation": 1.0},
        {"alert/truncation": 1.0},
        {},
        {"alert/truncation": 1.0},
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and "step 1: completion/truncated_frac 0.9 > 0.5" in warnings[0]


def test_state_through_json_alerts_as_if_never_interrupted():
    config = cfg(hacking_window=4)
    sequence = [
        {**rewards(0.1 * s, 0.3), "policy/entropy": 1.0 / s**2, "completion/truncated_frac": 0.9}
        for s in range(1, 9)
    ]
    straight, _ = run(sequence, config)
    first, state = run(sequence[:3], config)
    state = HealthState.from_json(json.loads(json.dumps(state.to_json())))
    rest, _ = run(sequence[3:], config, state, start=4)
    assert {**first, **rest} == straight
    assert {"entropy_collapse", "reward_hacking", "truncation"} <= {
        a.name for alerts in straight.values() for a in alerts
    }
    assert health.from_meta({"rl_step": 3}) == HealthState.empty()  # an older checkpoint


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"stop_on": ("klx",)}, r"health\.stop_on: unknown alert 'klx'"),
        ({"stop_on": ("kl",), "max_kl": None}, r"'kl' can never fire, health\.max_kl"),
        ({"entropy_collapse": 1.5}, r"health\.entropy_collapse must be in \(0, 1\)"),
        ({"hacking_window": 1}, r"health\.hacking_window must be >= 2"),
        ({"max_truncated": -0.1}, r"health\.max_truncated must be >= 0"),
    ],
)  # fmt: skip
def test_config_errors_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        cfg(**overrides)


def test_stop_on_picks_the_listed_alert():
    metrics = {"kl/mean": 2.0, "completion/truncated_frac": 1.0}
    _, alerts = health.check(HealthState.empty(), 5, metrics, cfg())
    assert [a.name for a in alerts] == ["kl", "truncation"]
    assert health.stop_alert(alerts, cfg()) is None
    assert health.stop_alert(alerts, cfg(stop_on=("truncation",))).name == "truncation"


def tiny(**overrides):
    config = sibling_config(str(REPO / "configs" / "tiny.py"), "tiny")
    config.observers.tensorboard = False
    config.eval.every_steps = 0
    for key, value in overrides.items():
        group, leaf = key.split(".")
        config[group][leaf] = value
    return config


def test_an_alert_in_stop_on_saves_stops_and_resumes(tmp_path):
    from rlvr_jax.train import train_and_evaluate

    # The tiny random model never emits EOS within 8 tokens: truncated_frac is 1 > 0.
    stop = {"health.max_truncated": 0.0, "health.stop_on": ("truncation",)}
    with fast_compile(), pytest.raises(HealthStopError) as error:
        train_and_evaluate(tiny(**stop), tmp_path)
    message = str(error.value)
    assert message.startswith("step 1: completion/truncated_frac 1 > 0: ")
    assert "raise sampling.max_new_tokens" in message and "'truncation'" in message
    assert error.value.alert.step == 1
    checkpoint = tmp_path / "checkpoints" / "1"
    assert error.value.checkpoint == checkpoint.absolute() and str(checkpoint) in message
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["1"]
    meta = json.loads((checkpoint / "meta" / "metadata").read_text())
    assert meta["rl_step"] == 1
    assert ["truncation", "completion/truncated_frac"] in meta["health"]["active"]
    train = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if "loss" in r]
    assert [(r["step"], r["alert/truncation"]) for r in train] == [(1, 1.0)]

    # Nothing saved is lost: without the stop, the run resumes from step 1 to the end.
    with fast_compile():
        train_and_evaluate(tiny(**{"health.max_truncated": 0.0}), tmp_path)
    train = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if "loss" in r]
    assert [(r["step"], r["alert/truncation"]) for r in train] == [(1, 1.0), (2, 1.0), (3, 1.0)]
