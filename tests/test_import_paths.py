"""User components by import path: a reward and a dataset loader from a module in a temp
dir run without registering anything; a bad path or signature fails at config build,
naming the key and the path."""

from __future__ import annotations

import textwrap

import pytest
from config_sections import base_config, section

from rlvr_jax.config import ExperimentConfig
from rlvr_jax.config_builder import ConfigError
from rlvr_jax.markers import Markers
from rlvr_jax.rewards import RewardsConfig, build_rewards, rows_to_fields, score_completions
from rlvr_jax.tasks import DataConfig, load_rows

MODULE = '''
def shout(completions, *, answer, bonus=0.5, **unused):
    """1 + bonus when the completion is the answer in capitals."""
    return [1.0 + bonus if c == a.upper() else 0.0 for c, a in zip(completions, answer)]


def positional(completions, answer=None):
    return [0.0 for _ in completions]


def two_rows(config, which):
    return [{"question": f"{which} q{i}", "answer": str(i)} for i in range(2)]


def one_arg(config):
    return []


def boom(config, which):
    raise RuntimeError("never called at config build")


NOT_A_FUNCTION = 3
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_components.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_components"


def markers():
    return Markers(
        reasoning_start="<r>", reasoning_end="</r>", answer_start="<a>", answer_end="</a>"
    )


def test_reward_by_import_path_runs(user_module):
    cfg = section(
        RewardsConfig,
        "rewards",
        fns=[{"name": f"{user_module}:shout", "weight": 2.0, "params": {"bonus": 1.0}}],
    )
    rewards = build_rewards(cfg, markers())
    rows = [{"question": "say hi", "answer": "hi"}]
    out = score_completions(rewards, ["HI", "hi"], rows_to_fields(rows, repeat=2))
    assert out.per_fn[f"{user_module}:shout"].tolist() == [2.0, 0.0]
    assert out.total.tolist() == [4.0, 0.0]


@pytest.mark.parametrize(
    "name,message",
    [
        ("no_such_module_xyz:fn", "cannot import module 'no_such_module_xyz'"),
        ("{m}:missing", "has no 'missing'"),
        ("{m}:NOT_A_FUNCTION", "not a function"),
        ("{m}:positional", "must be keyword-only"),
    ],
)
def test_bad_reward_path_fails_at_config_build(user_module, name, message):
    config = base_config()
    config.rewards.fns = [{"name": name.format(m=user_module), "weight": 1.0}]
    with pytest.raises(ConfigError, match="rewards.fns") as info:
        ExperimentConfig.from_config_dict(config)
    assert message in str(info.value)
    assert name.format(m=user_module) in str(info.value)


def test_unknown_reward_param_of_an_imported_reward_is_named(user_module):
    with pytest.raises(ValueError, match="unknown param 'volume'"):
        section(
            RewardsConfig,
            "rewards",
            fns=[{"name": f"{user_module}:shout", "params": {"volume": 11}}],
        )


def test_dataset_by_import_path_loads(user_module):
    cfg = section(DataConfig, "data", name=f"{user_module}:two_rows", shuffle=False)
    rows = load_rows(cfg, "train")
    assert [r["question"] for r in rows] == ["train q0", "train q1"]


def test_bad_dataset_path_fails_at_config_build(user_module):
    with pytest.raises(ValueError, match=r"data.name: .*has no 'nope'"):
        section(DataConfig, "data", name=f"{user_module}:nope")
    with pytest.raises(ValueError, match="data.name: .*must take 2 positional"):
        section(
            DataConfig,
            "data",
            name=f"{user_module}:NOT_A_FUNCTION".replace("NOT_A_FUNCTION", "positional").replace(
                "positional", "shout"
            ),
        )
    section(DataConfig, "data", name=f"{user_module}:boom")  # checked, not called


SINK_MODULE = """
from rlvr_jax.observers import Observer

EVENTS = []


class Recorder(Observer):
    name = "recorder"

    def on_step_end(self, step, metrics, samples):
        EVENTS.append((step, dict(metrics)))


def make(config, workdir):
    return Recorder()


def no_args():
    return Recorder()
"""


@pytest.fixture
def sink_module(tmp_path, monkeypatch):
    (tmp_path / "my_sinks.py").write_text(textwrap.dedent(SINK_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_sinks"


def test_observer_by_import_path_runs(sink_module, tmp_path):
    import importlib

    from rlvr_jax.observers import make_observers

    config = base_config()
    config.observers.custom = (f"{sink_module}:make",)
    config.observers.tensorboard = False
    exp = ExperimentConfig.from_config_dict(config)
    with make_observers(exp.observers, tmp_path, is_main_process=True) as observers:
        assert observers.names[-1] == "recorder"  # after the built-in sinks
        observers.on_run_start({}, {"num_steps": 1, "resumed_from_step": 0})
        observers.on_step_end(1, {"loss": 0.5}, None)
    assert importlib.import_module(sink_module).EVENTS == [(1, {"loss": 0.5})]


@pytest.mark.parametrize(
    "path, message",
    [
        ("{m}:missing", "has no 'missing'"),
        ("{m}:no_args", "must take 2 positional"),
        ("no_such_sinks_xyz:make", "cannot import module 'no_such_sinks_xyz'"),
        ("console", "is not an import path"),
    ],
)
def test_bad_observer_path_fails_at_config_build(sink_module, path, message):
    config = base_config()
    config.observers.custom = (f"{sink_module}:make", path.format(m=sink_module))
    with pytest.raises(ConfigError, match=r"observers\.custom\[1\]") as info:
        ExperimentConfig.from_config_dict(config)
    assert message in str(info.value) and path.format(m=sink_module) in str(info.value)
