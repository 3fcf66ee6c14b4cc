"""The reward combiner, its config validation, error policy, and diagnostics."""

import json
import logging

import numpy as np
import pytest

from rlvr_jax.config_builder import ConfigError, build
from rlvr_jax.markers import DEFAULT_MARKERS, THINK_MARKERS
from rlvr_jax.rewards import (
    REWARDS,
    RewardError,
    RewardsConfig,
    RewardSpec,
    build_rewards,
    registry,
    reward_metrics,
    rows_to_fields,
    score_completions,
)
from rlvr_jax.rewards.registry import RewardEntry, Verifier, get_verifier, register_reward

ROWS = [{"question": "q1", "answer": "18"}, {"question": "q2", "answer": "7"}]
COMPLETIONS = [
    "<reasoning>9 * 2</reasoning><answer>18</answer>",  # row 0, right, formatted
    "18",  # row 0, right but unformatted
    "<reasoning>3 + 3</reasoning><answer>6</answer>",  # row 1, wrong, formatted
    "<answer>boom</answer>",  # row 1, wrong
]


def _config(*fns, on_error="raise", correctness="answer_match"):
    return RewardsConfig(fns=fns, on_error=on_error, correctness=correctness)


def _score(config, completions=COMPLETIONS, markers=DEFAULT_MARKERS, **kwargs):
    return score_completions(
        build_rewards(config, markers), completions, rows_to_fields(ROWS, repeat=2), **kwargs
    )


def test_rows_to_fields_repeats_each_row():
    fields = rows_to_fields(ROWS, repeat=2)
    assert fields == {"answer": ["18", "18", "7", "7"], "question": ["q1", "q1", "q2", "q2"]}


def test_weighted_total_and_per_reward_values():
    config = _config(
        RewardSpec("answer_match", 2.0),
        RewardSpec("answer_match", 1.0, {"mode": "lenient"}, label="answer_lenient"),
        RewardSpec("format_exact", 0.5),
    )
    out = _score(config)
    np.testing.assert_array_equal(out.per_fn["answer_match"], [1, 0, 0, 0])
    np.testing.assert_array_equal(out.per_fn["answer_lenient"], [1, 1, 0, 0])
    np.testing.assert_array_equal(out.per_fn["format_exact"], [1, 0, 1, 0])
    np.testing.assert_allclose(out.total, [3.5, 1.0, 0.5, 0.0])
    np.testing.assert_array_equal(out.correct, [True, False, False, False])
    assert out.total.dtype == np.float32


def test_markers_reach_every_reward():
    config = _config(RewardSpec("format_exact"), RewardSpec("answer_match"))
    out = _score(config, ["<think>r</think><answer>18</answer>"] * 4, markers=THINK_MARKERS)
    np.testing.assert_array_equal(out.per_fn["format_exact"], [1, 1, 1, 1])
    np.testing.assert_array_equal(out.per_fn["answer_match"], [1, 1, 0, 0])


def test_correctness_uses_the_configured_verifier_params():
    config = _config(RewardSpec("answer_match", params={"mode": "lenient"}))
    np.testing.assert_array_equal(_score(config).correct, [True, True, False, False])


def test_completion_lengths_reach_length_rewards():
    spec = RewardSpec("overlong_penalty", params={"max_len": 10, "cache_len": 4})
    out = _score(_config(spec), completion_lengths=[1, 8, 10, 30])
    np.testing.assert_allclose(out.per_fn["overlong_penalty"], [0, -0.5, -1, -1])


def test_row_fields_never_override_params():
    rows = [{"question": "q", "answer": "18", "mode": "lenient"}]
    reward_set = build_rewards(_config(RewardSpec("answer_match")), DEFAULT_MARKERS)
    out = score_completions(reward_set, ["18"], rows_to_fields(rows))
    assert out.per_fn["answer_match"].tolist() == [0.0]  # still strict


@pytest.fixture
def exploding_reward(monkeypatch):
    def exploding(completions, *, answer, **unused):
        return [1 / 0 if "boom" in text else 1.0 for text in completions]

    monkeypatch.setitem(REWARDS, "exploding", RewardEntry(fn=exploding, verifier=None))
    return "exploding"


def test_a_raising_reward_stops_the_run_with_its_name_and_completion(exploding_reward):
    config = _config(RewardSpec("answer_match"), RewardSpec(exploding_reward))
    with pytest.raises(
        RewardError, match=r"(?s)'exploding'.*ZeroDivisionError.*completion 3.*boom"
    ):
        _score(config)


def test_on_error_zero_scores_failures_zero_and_warns_once(exploding_reward, caplog):
    config = _config(RewardSpec(exploding_reward), on_error="zero")
    with caplog.at_level(logging.WARNING):
        out = _score(config)
    np.testing.assert_array_equal(out.per_fn["exploding"], [1, 1, 1, 0])
    warnings = [r for r in caplog.records if "exploding" in r.getMessage()]
    assert len(warnings) == 1 and "1 of 4" in warnings[0].getMessage()


def test_non_finite_scores_are_errors(monkeypatch):
    nan_reward = RewardEntry(
        fn=lambda completions, **_: [float("nan")] * len(completions), verifier=None
    )
    monkeypatch.setitem(REWARDS, "nan_reward", nan_reward)
    with pytest.raises(RewardError, match="non-finite"):
        _score(_config(RewardSpec("nan_reward")))


def test_missing_row_field_names_the_field():
    config = _config(RewardSpec("countdown_equation"), correctness="countdown_equation")
    with pytest.raises(RewardError, match=r"needs row fields \['numbers', 'target'\]"):
        _score(config)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: RewardSpec("answer_mach"), r"rewards.fns\[answer_mach\].name: unknown reward"),
        (lambda: RewardSpec("answer_match", params={"tol": 1}), r"unknown param 'tol'.*'mode'"),
        (lambda: RewardSpec("answer_match", params={"mode": "strct"}), r"params.mode: must be"),
        (lambda: RewardSpec("answer_match", weight=float("nan")), r"weight: must be finite"),
        (lambda: RewardSpec("answer_match", label="total"), r"label: 'total' is reserved"),
        (lambda: _config(), r"rewards.fns: at least one"),
        (
            lambda: _config(RewardSpec("answer_match"), RewardSpec("answer_match")),
            r"duplicate reward labels \['answer_match'\]",
        ),
        (
            lambda: _config(RewardSpec("answer_match"), on_error="ignore"),
            r"rewards.on_error: unknown value 'ignore'",
        ),
        (
            lambda: _config(RewardSpec("format_exact"), correctness="format_exact"),
            r"rewards.correctness: 'format_exact' is not a verifier; choose one of "
            r"\['answer_match', 'countdown_equation', 'math_equivalence'\]",
        ),
        (
            lambda: _config(RewardSpec("countdown_equation")),
            r"rewards.correctness: 'answer_match' is not among rewards.fns but "
            r"'countdown_equation' is",
        ),
    ],
)
def test_config_errors_name_the_key(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_unknown_reward_lists_the_choices():
    with pytest.raises(ValueError, match=r"choose one of \['answer_match', 'countdown_equation'"):
        RewardSpec("nope")


DECLARED = {
    "fns": [
        {"name": "answer_match", "weight": 1.0, "params": {"mode": "lenient"}},
        {"name": "format_approx"},  # weight, params and label may be left out
    ],
    "on_error": "zero",
    "correctness": "answer_match",
}


def test_builder_builds_the_declared_config():
    config = build(RewardsConfig, DECLARED, "rewards")
    assert [spec.name for spec in config.fns] == ["answer_match", "format_approx"]
    assert config.fns[0].params == {"mode": "lenient"} and config.on_error == "zero"
    assert config.fns[1] == RewardSpec("format_approx", 1.0, {}, "")


def test_builder_rejects_an_unknown_key_in_a_reward_spec():
    mapping = {**DECLARED, "fns": [{"name": "answer_match", "wieght": 1}]}
    with pytest.raises(ConfigError, match=r"^rewards.fns\[0\].wieght: unknown key"):
        build(RewardsConfig, mapping, "rewards")


@pytest.mark.parametrize("missing", ["fns", "on_error", "correctness"])
def test_builder_needs_every_rewards_key_declared(missing):
    mapping = {key: value for key, value in DECLARED.items() if key != missing}
    with pytest.raises(ConfigError, match=rf"^rewards.{missing}: not declared"):
        build(RewardsConfig, mapping, "rewards")


def test_builder_reports_validation_errors_as_config_errors():
    mapping = {**DECLARED, "correctness": "format_approx"}
    message = r"^rewards.correctness: 'format_approx' is not a verifier"
    with pytest.raises(ConfigError, match=message):
        build(RewardsConfig, mapping, "rewards")


def test_builder_from_ml_collections_config():
    import ml_collections

    rewards = ml_collections.ConfigDict()
    rewards.fns = [{"name": "answer_match", "weight": 1.0, "params": {"mode": "lenient"}}]
    rewards.on_error = "raise"
    rewards.correctness = "answer_match"
    config = build(RewardsConfig, rewards, "rewards")
    assert config == build(RewardsConfig, rewards.to_dict(), "rewards")
    assert config.fns[0].params == {"mode": "lenient"}


def test_get_verifier_names_the_key():
    entry, verifier = get_verifier("countdown_equation")
    assert entry is REWARDS["countdown_equation"] and verifier is entry.verifier
    with pytest.raises(ValueError, match=r"^rewards.correctness: 'format_exact' is not a verifier"):
        get_verifier("format_exact")
    with pytest.raises(ValueError, match=r"^eval.verifier: 'nope' is not a verifier"):
        get_verifier("nope", key="eval.verifier")


def _verifier_with(correct=None, answers=None):
    def default(completions, *, answer, markers=DEFAULT_MARKERS, mode="strict", **unused):
        return [None] * len(completions)

    return Verifier(
        correct=correct or default,
        answers=answers or default,
        vote_key=lambda answer: answer,
        format_ok=lambda text, markers: True,
    )


def _a_reward(completions, *, answer, markers=DEFAULT_MARKERS, mode="strict", **unused):
    return [0.0] * len(completions)


@pytest.mark.parametrize(
    "verifier, message",
    [
        (
            _verifier_with(answers=lambda completions, *, target, markers=0, mode=0: []),
            r"verifier.answers needs row fields \['target'\]",
        ),
        (
            _verifier_with(correct=lambda completions, *, answer, markers=0: []),
            r"verifier.correct must accept \['mode'\]",
        ),
        (
            _verifier_with(correct=lambda completions, *, answer, markers=0, mode=0, tol=0: []),
            r"verifier.correct has params \['tol'\] the reward lacks",
        ),
    ],
)
def test_register_reward_checks_the_verifier_signatures(monkeypatch, verifier, message):
    monkeypatch.setattr(registry, "REWARDS", {})
    with pytest.raises(ValueError, match=message):
        register_reward("a_reward", verifier=verifier)(_a_reward)
    register_reward("a_reward", verifier=_verifier_with())(_a_reward)
    assert registry.REWARDS["a_reward"].verifier is not None


def test_diagnostics_report_means_and_correlation_with_correctness():
    config = _config(RewardSpec("answer_match"), RewardSpec("format_exact", 0.5))
    metrics = reward_metrics(_score(config))
    assert metrics["reward/correct_frac"] == 0.25
    assert metrics["reward/answer_match/mean"] == 0.25
    assert metrics["reward/answer_match/corr_with_correct"] == pytest.approx(1.0)
    assert metrics["reward/format_exact/mean"] == 0.5
    # format [1,0,1,0] vs correct [1,0,0,0]: Pearson r = 1/sqrt(3)
    assert metrics["reward/format_exact/corr_with_correct"] == pytest.approx(3**-0.5)
    assert metrics["reward/total/mean"] == pytest.approx(0.5)
    json.dumps(metrics)  # plain floats


def test_correlation_is_zero_when_undefined():
    config = _config(RewardSpec("format_exact"))
    metrics = reward_metrics(_score(config, ["x"] * 4))  # all wrong, all unformatted
    assert metrics["reward/format_exact/corr_with_correct"] == 0.0
