"""Curricula (`data.curriculum`): the pass-rate update, the band, difficulty order, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
from config_sections import section
from test_pipeline import tiny_config, train_rows
from test_resume import checkpoint_meta, state_arrays, step_prompts

from rlvr_jax.tasks import DataConfig
from rlvr_jax.tasks.curriculum import (
    CurriculumConfig,
    PassRates,
    PassRateSampler,
    make_source,
    update_pass_rates,
)
from rlvr_jax.train import train_and_evaluate

ROWS = [{"question": f"q{i}", "answer": str(i), "level": (7 * i) % 5} for i in range(10)]
BAND = dict(
    mode="pass_rate_band",
    band_low=0.2,
    band_high=0.8,
    ema_rate=0.5,
    out_of_band_weight=0.1,
    difficulty_field="",
)


def test_pass_rate_update_by_hand():
    rates = PassRates.empty(3)
    correct = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)
    rates = update_pass_rates(rates, [0, 2], correct, ema_rate=0.25)
    assert rates.ema_N.tolist() == [0.5, 0.0, 1.0] and rates.seen_N.tolist() == [1, 0, 1]
    rates = update_pass_rates(rates, [0, 0], np.array([[0, 0, 0, 0], [1, 1, 1, 1]]), 0.25)
    # 0.5 -> 0.75 * 0.5 + 0.25 * 0 = 0.375 -> 0.75 * 0.375 + 0.25 * 1 = 0.53125
    assert rates.ema_N[0] == 0.53125 and rates.seen_N[0] == 3


def answer_ids(batch):
    return [int(row["answer"]) for row in batch]


def test_band_favours_prompts_inside_it():
    """Prompts 0-4 always solved (EMA 1, out of band), 5-9 half solved (in band): over
    many batches the in-band prompts are drawn about 1 / out_of_band_weight = 10x as often."""
    sampler = PassRateSampler(ROWS, 4, seed=0, config=CurriculumConfig(**BAND))
    counts = np.zeros(10)
    for _ in range(400):
        ids = answer_ids(next(sampler))
        counts[ids] += 1
        sampler.observe(np.array([[True, True] if i < 5 else [True, False] for i in ids]))
    assert sampler.pass_rates.ema_N[:5].tolist() == [1.0] * 5
    ratio = counts[5:].sum() / counts[:5].sum()
    assert ratio > 4, counts  # uniform sampling would give 1


def test_pass_rate_sampler_resumes_exactly():
    def run(sampler, steps):
        out = []
        for _ in range(steps):
            ids = answer_ids(next(sampler))
            sampler.observe(np.array([[i % 3 == 0, i % 2 == 0] for i in ids]))
            out.append(ids)
        return out

    config = CurriculumConfig(**BAND)
    reference = run(PassRateSampler(ROWS, 4, seed=2, config=config), 12)
    sampler = PassRateSampler(ROWS, 4, seed=2, config=config)
    first = run(sampler, 5)
    state = json.loads(json.dumps(sampler.state()))  # what a checkpoint stores
    assert state["batches"] == 5 and sum(state["seen"]) == 20
    resumed = PassRateSampler(ROWS, 4, seed=2, config=config, state=state)
    assert first + run(resumed, 7) == reference
    with pytest.raises(ValueError, match="config changed"):
        PassRateSampler(ROWS[:9], 4, seed=2, config=config, state=state)


def test_state_is_refused_while_verdicts_are_pending():
    sampler = PassRateSampler(ROWS, 4, seed=0, config=CurriculumConfig(**BAND))
    next(sampler)
    with pytest.raises(RuntimeError, match="not observed"):
        sampler.state()


def test_difficulty_order_visits_rows_easy_to_hard():
    curriculum = {**BAND, "mode": "difficulty_order", "difficulty_field": "level"}
    data = section(DataConfig, "data", curriculum=curriculum)
    source = make_source(ROWS, data, batch_size=5)
    levels = [row["level"] for _ in range(2) for row in next(source)]
    assert levels == sorted(levels)
    missing = section(DataConfig, "data", curriculum={**curriculum, "difficulty_field": "nope"})
    with pytest.raises(ValueError, match="data.curriculum.difficulty_field: rows lack 'nope'"):
        make_source(ROWS, missing, batch_size=5)


@pytest.mark.parametrize(
    "override, message",
    [
        ({"mode": "hardest"}, "data.curriculum.mode: unknown 'hardest'"),
        ({"band_low": 0.9}, "data.curriculum.band_low/band_high"),
        ({"ema_rate": 0.0}, "data.curriculum.ema_rate"),
        ({"mode": "difficulty_order"}, "data.curriculum.difficulty_field"),
    ],
)
def test_bad_curriculum_is_named(override, message):
    with pytest.raises(ValueError, match=message):
        section(DataConfig, "data", curriculum={**BAND, **override})


RUN = {
    "data.arithmetic.num_train": 6,
    "eval.every_steps": 0,
    "observers.tensorboard": False,
    "checkpoint.every_steps": 2,
    **{f"data.curriculum.{k}": v for k, v in BAND.items()},
}


def test_curriculum_resume_is_exact(tmp_path):
    """The pass-rate table and draw counter go in the checkpoint: 2 steps + a resume to 4
    equal 4 steps in one go (prompts, metrics, train state)."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_and_evaluate(tiny_config(max_steps=4, **RUN), straight)
    train_and_evaluate(tiny_config(max_steps=2, **RUN), resumed)
    state = checkpoint_meta(resumed, 2)["data_iterator"]
    assert state["batches"] == 2 and sum(state["seen"]) == 4 and state["num_rows"] == 6
    train_and_evaluate(tiny_config(max_steps=4, **RUN), resumed)

    assert step_prompts(resumed) == step_prompts(straight)
    assert train_rows(resumed) == train_rows(straight)
    a, b = state_arrays(straight, 4), state_arrays(resumed, 4)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_checkpoints_from_before_the_curriculum_keys_still_resume():
    from rlvr_jax.errors import ConfigChangedError
    from rlvr_jax.resume import check_config

    saved = {"data": {"name": "arithmetic"}, "max_steps": 2}
    current = {
        "data": {"name": "arithmetic", "mixture": {}, "curriculum": {**BAND, "mode": "none"}},
        "max_steps": 2,
    }
    assert check_config(saved, current, allow_changes=False, where="w") == {}
    current["data"]["curriculum"]["mode"] = "pass_rate_band"  # trains differently: refused
    with pytest.raises(ConfigChangedError, match="data.curriculum.mode"):
        check_config(saved, current, allow_changes=False, where="w")
