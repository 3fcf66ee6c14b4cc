"""Multi-task training (`data.mixture`): proportions, per-task rewards, exact resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
from config_sections import base_config
from scipy import stats
from test_pipeline import tiny_config, train_rows
from test_resume import checkpoint_meta, state_arrays, step_prompts

from rlvr_jax.config import ExperimentConfig
from rlvr_jax.config_builder import ConfigError
from rlvr_jax.markers import DEFAULT_MARKERS
from rlvr_jax.rewards import build_rewards, rows_to_fields
from rlvr_jax.rewards.tasks import batch_reward_metrics, score_tasks
from rlvr_jax.tasks import RowIterator
from rlvr_jax.tasks.mixture import MixtureIterator
from rlvr_jax.train import train_and_evaluate

WEIGHTS = (0.5, 0.3, 0.2)


def rows_of(task: str, n: int) -> list[dict]:
    return [{"question": f"{task} {i}", "answer": str(i), "task": task} for i in range(n)]


def mixture(batch_size: int = 8, state: dict | None = None, **where) -> MixtureIterator:
    names = ("a", "b", "c")
    states = dict.fromkeys(names) if state is None else state["tasks"]
    sources = {
        name: RowIterator(rows_of(name, 7 + i), batch_size, seed=3, state=states[name])
        for i, name in enumerate(names)
    }
    batches = 0 if state is None else state["batches"]
    return MixtureIterator(sources, WEIGHTS, batch_size, seed=11, batches=batches, **where)


def drain(it: MixtureIterator, steps: int, batch_size: int = 8) -> list[list[str]]:
    out = []
    for _ in range(steps):
        batch = next(it)
        it.observe(np.zeros((batch_size, 2), bool))  # the global batch's verdicts
        out.append([row["question"] for row in batch])
    return out


def test_task_proportions_follow_the_weights():
    """Chi-square goodness of fit of 500 batches x 8 slots against the weights; the same
    counts against uniform weights are rejected (the test has the power to fail)."""
    it = mixture()
    counts = {"a": 0, "b": 0, "c": 0}
    for batch in drain(it, 500):
        for question in batch:
            counts[question.split()[0]] += 1
    observed = np.array([counts[k] for k in "abc"])
    n = observed.sum()
    assert n == 4000
    fit = stats.chisquare(observed, n * np.asarray(WEIGHTS))
    assert fit.pvalue > 1e-3, (observed, fit)
    uniform = stats.chisquare(observed, np.full(3, n / 3))
    assert uniform.pvalue < 1e-6, (observed, uniform)


def test_mixture_resumes_exactly_and_splits_over_processes():
    reference = drain(mixture(), 9)
    it = mixture()
    first = drain(it, 4)
    state = json.loads(json.dumps(it.state()))  # what a checkpoint stores
    assert state["batches"] == 4 and sorted(state["tasks"]) == ["a", "b", "c"]
    assert first + drain(mixture(state=state), 5) == reference
    parts = [mixture(process_index=i, process_count=2) for i in (0, 1)]
    for whole in reference:
        assert drain(parts[0], 1)[0] + drain(parts[1], 1)[0] == whole


def mixture_config(config):
    """configs/arithmetic.py's sections as base, two tasks: arithmetic and countdown."""
    config.data.mixture = dict(
        arith=dict(weight=2.0, data=dict(name="arithmetic"), prompt=dict(), rewards=dict()),
        count=dict(
            weight=1.0,
            data=dict(name="countdown"),
            prompt=dict(),
            rewards=dict(
                fns=[dict(name="countdown_equation", params=dict(mode="lenient"))],
                correctness="countdown_equation",
            ),
        ),
    )
    return config


def test_each_task_is_scored_by_its_own_rewards_only():
    """countdown_equation needs `numbers` and `target`, which arithmetic rows lack: applied
    to them it would raise. Each row gets its own task's total and verdict; the other
    task's rewards read 0 there."""
    exp = ExperimentConfig.from_config_dict(mixture_config(base_config()))
    assert [(t.name, t.weight) for t in exp.tasks] == [("arith", 2 / 3), ("count", 1 / 3)]
    sets = [(t.name, build_rewards(t.rewards, DEFAULT_MARKERS)) for t in exp.tasks]
    rows = [
        {"question": "What is 2 + 3?", "answer": "5", "task": "arith"},
        {"question": "Reach 10", "answer": "", "numbers": [2, 5], "target": 10, "task": "count"},
    ]
    G = 2
    texts = ["5", "4", "2 * 5", "2 + 5"]
    task_R = np.repeat([0, 1], G)

    def fields_of(idx):
        return rows_to_fields([rows[i] for i in idx[::G] // G], repeat=G)

    out = score_tasks(sets, task_R, texts, fields_of)
    assert sorted(out.per_fn) == ["arith/answer_match", "count/countdown_equation"]
    assert out.per_fn["arith/answer_match"].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert out.per_fn["count/countdown_equation"].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert out.total.tolist() == [1.0, 0.0, 1.0, 0.0]
    assert out.correct.tolist() == [True, False, True, False]
    metrics = batch_reward_metrics(out, ["arith", "count"])
    assert metrics["reward/arith/mean"] == 0.5 and metrics["reward/count/frac"] == 0.5
    assert metrics["reward/arith/answer_match/mean"] == 0.5  # over its own rows only
    assert metrics["reward/total/mean"] == 0.5 and metrics["reward/correct_frac"] == 0.5


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.arith.update(weight=-1.0), r"data\.mixture\.arith\.weight"),
        (lambda m: m.count.data.update(name="nope"), r"data\.mixture\.count\.data.*'nope'"),
        (lambda m: m.count.update(prompt=dict(style="x")), r"data\.mixture\.count\.prompt"),
        (lambda m: m.count.rewards.update(correctness="answer_match"), r"mixture\.count\.rewards"),
    ],
)
def test_a_bad_task_is_named_at_config_build(edit, message):
    config = mixture_config(base_config())
    edit(config.data.mixture)
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig.from_config_dict(config)


# --- a run ---------------------------------------------------------------------------------

RUN = {"eval.every_steps": 0, "observers.tensorboard": False, "checkpoint.every_steps": 2}
SMALL = {"data.countdown.num_train": 16, "data.countdown.num_eval": 4}


def tiny_mixture(max_steps: int):
    return mixture_config(tiny_config(max_steps=max_steps, **RUN, **SMALL))


def test_resume_mid_mixture_is_exact(tmp_path):
    """2 steps + a resume to 4 equal 4 steps in one go: prompts, metrics, train state."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_and_evaluate(tiny_mixture(4), straight)
    train_and_evaluate(tiny_mixture(2), resumed)
    state = checkpoint_meta(resumed, 2)["data_iterator"]
    assert state["batches"] == 2 and sorted(state["tasks"]) == ["arith", "count"]
    train_and_evaluate(tiny_mixture(4), resumed)

    assert step_prompts(resumed) == step_prompts(straight)
    rows = train_rows(resumed)
    assert rows == train_rows(straight)
    for row in rows.values():
        assert row["reward/arith/frac"] + row["reward/count/frac"] == 1.0
        assert "reward/total/mean" in row
    a, b = state_arrays(straight, 4), state_arrays(resumed, 4)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_eval_script_reports_each_task(tmp_path):
    """scripts/eval.py's library side on a mixture: one evaluation directory per task (its
    own eval split and verifier) and a table of each task's greedy accuracy."""
    from rlvr_jax.evaluation.evaluate_run import QUESTIONS, evaluate_run

    config = tiny_mixture(1)
    config.eval.max_samples = 2
    config.eval.batch_size = 2
    summary = evaluate_run(config, None, tmp_path / "eval")
    assert sorted(summary["tasks"]) == ["arith", "count"]
    for task, expected in (("arith", "What is"), ("count", "Using the numbers")):
        assert summary["tasks"][task]["num_questions"] == 2
        records = (tmp_path / "eval" / task / QUESTIONS).read_text().splitlines()
        assert len(records) == 2 and all(expected in line for line in records), records[0]
        assert (tmp_path / "eval" / task / "report.md").is_file()
    table = (tmp_path / "eval" / "tasks.md").read_text()
    assert "| arith |" in table and "| count |" in table
