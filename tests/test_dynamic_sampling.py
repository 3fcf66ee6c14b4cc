"""Dynamic sampling (DAPO): selection on controlled rewards, and the loop on configs/tiny.py
(kept groups vary, static shapes, no recompiles, exact resume of the data stream)."""

from __future__ import annotations

import types

import jax
import numpy as np
import pytest
from test_pipeline import checkpoint_state, read_jsonl, tiny_config, train_rows

from rlvr_jax import dynamic_sampling
from rlvr_jax.config import DynamicSamplingConfig
from rlvr_jax.dynamic_sampling import informative_groups, select_groups, step_rollout
from rlvr_jax.observers.compilations import COMPILE_COUNT
from rlvr_jax.rewards import RewardOutput
from rlvr_jax.rollout import Rollout
from rlvr_jax.sampling import Completions
from rlvr_jax.train import train_and_evaluate

G, B, L = 2, 3, 4


def fake_rollout(round_index: int, rewards: list[float], prompt_width: int) -> Rollout:
    """B groups of G rows whose ids encode (round, row) and whose prompts are `prompt_width`
    wide: enough to check which rows a selection took and how it padded."""
    R = len(rewards)
    rows = np.arange(R)
    ids = np.tile((round_index * 100 + rows)[:, None], (1, L)).astype(np.int32)
    completions = Completions(
        prompt_ids=np.full((R, prompt_width), 7, np.int32),
        prompt_mask=np.ones((R, prompt_width), np.int32),
        ids=ids,
        mask=np.ones((R, L), np.int32),
        logprobs=np.zeros((R, L), np.float32),
        sampling_logprobs=np.zeros((R, L), np.float32),
        lengths=np.full(R, L, np.int32),
        truncated=np.zeros(R, bool),
    )
    total = np.asarray(rewards, np.float32)
    return Rollout(
        rows=tuple({"question": f"r{round_index}q{p}", "answer": "1"} for p in range(R // G)),
        completions=completions,
        texts=tuple(f"{round_index}:{r}" for r in rows),
        scores=RewardOutput(
            per_fn={"fn": total},
            total=total,
            correct=total > 0,
            task=np.zeros(total.size, np.int32),
        ),
        seconds={"time/sample_s": 1.0, "time/reward_s": 0.5},
    )


def scripted(monkeypatch, rounds: list[tuple[list[float], int]], max_rounds: int):
    """step_rollout with `rollout` replaced by the scripted rounds (rewards, prompt width)."""
    calls = []

    def rollout(run, trainable, rows, key, cfg):
        calls.append(rows)
        rewards, width = rounds[len(calls) - 1]
        return fake_rollout(len(calls) - 1, rewards, width)

    monkeypatch.setattr(dynamic_sampling, "rollout", rollout)
    run = types.SimpleNamespace(
        sampling=types.SimpleNamespace(num_samples=G),
        special_tokens=types.SimpleNamespace(pad_token_id=0),
        exp=types.SimpleNamespace(rl=types.SimpleNamespace(prompts_per_step=B)),
    )
    iterator = iter(range(100))
    cfg = DynamicSamplingConfig(enabled=True, max_rounds=max_rounds)
    return step_rollout(run, None, iterator, jax.random.key(0), cfg), calls


def test_keeps_informative_groups_in_draw_order(monkeypatch):
    rounds = [([1, 0, 1, 1, 0, 0], 4), ([0, 0, 1, 0, 0, 1], 6)]  # groups: var, -, - | -, var, var
    out, calls = scripted(monkeypatch, rounds, max_rounds=4)
    assert len(calls) == 2  # stopped as soon as B informative groups were there
    ids = np.asarray(out.batch.completions.ids)[:, 0]
    np.testing.assert_array_equal(ids, [0, 1, 102, 103, 104, 105])
    assert informative_groups(out.batch.scores.total, G).all()
    # Round 0's prompts were 4 wide, round 1's 6: left-padded to 6 (pad 0, mask 0).
    prompt_mask = np.asarray(out.batch.completions.prompt_mask)
    np.testing.assert_array_equal(prompt_mask[:2, :2], 0)
    np.testing.assert_array_equal(prompt_mask[2:], 1)
    assert out.batch.texts == ("0:0", "0:1", "1:2", "1:3", "1:4", "1:5")
    assert [r["question"] for r in out.batch.rows] == ["r0q0", "r1q1", "r1q2"]
    assert out.metrics == {
        "dynamic/rounds": 2.0,
        "dynamic/kept_frac": 3 / 6,
        "dynamic/prompts_consumed": 6.0,
        "dynamic/filled_groups": 0.0,
    }
    assert out.batch.seconds == {"time/sample_s": 2.0, "time/reward_s": 1.0}
    assert len(out.drawn) == 2 and len(out.drawn_scores.total) == 12  # metrics see all draws


def test_caps_the_rounds_and_fills_with_the_first_constant_groups(monkeypatch, caplog):
    rounds = [([0, 0, 1, 1, 0, 1], 4), ([0, 0, 0, 0, 1, 1], 4)]  # -, -, var | -, -, -
    out, calls = scripted(monkeypatch, rounds, max_rounds=2)
    assert len(calls) == 2
    ids = np.asarray(out.batch.completions.ids)[:, 0]
    np.testing.assert_array_equal(ids, [4, 5, 0, 1, 2, 3])  # the kept group, then fill
    assert out.metrics["dynamic/filled_groups"] == 2.0
    assert out.metrics["dynamic/kept_frac"] == 1 / 6
    assert "rl.dynamic_sampling.max_rounds=2" in caplog.text


def test_disabled_is_one_plain_rollout(monkeypatch):
    calls = []

    def rollout(run, trainable, rows, key, cfg):
        calls.append(rows)
        return fake_rollout(0, [0, 0, 0, 0, 0, 0], 4)

    monkeypatch.setattr(dynamic_sampling, "rollout", rollout)
    run = types.SimpleNamespace(sampling=types.SimpleNamespace(num_samples=G))
    cfg = DynamicSamplingConfig(enabled=False, max_rounds=4)
    out = step_rollout(run, None, iter(range(9)), jax.random.key(0), cfg)
    assert calls == [0] and out.metrics == {} and out.drawn == (out.batch,)


def test_select_groups_needs_a_pick():
    with pytest.raises(ValueError, match="no groups"):
        select_groups([fake_rollout(0, [0, 1], 3)], [], pad_id=0)


# --- the loop on the tiny model ---------------------------------------------------------
# The random model's answers are always wrong; a length reward in characters, capped at 40
# characters, varies within some groups (kept) and not within others (all capped: dropped).
DYNAMIC = {
    "rl.dynamic_sampling.enabled": True,
    "rl.dynamic_sampling.max_rounds": 3,
    "rewards.fns": [
        {"name": "answer_match", "weight": 1.0, "params": {"mode": "lenient"}},
        {"name": "length_penalty", "weight": 0.1, "params": {"max_len": 40, "unit": "chars"}},
    ],
}


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("dynamic_straight")
    train_and_evaluate(tiny_config(max_steps=4, **DYNAMIC), workdir)
    return workdir


def test_loop_trains_on_informative_groups_without_recompiling(straight):
    train = [r for r in read_jsonl(straight / "metrics.jsonl") if "loss" in r]
    assert len(train) == 4
    for row in train:
        assert 1 <= row["dynamic/rounds"] <= 3
        # every kept group varies: the only zero-variance groups are the fill
        prompts = row["dynamic/prompts_consumed"] / row["dynamic/rounds"]
        assert row["frac_zero_std"] == pytest.approx(row["dynamic/filled_groups"] / prompts)
    assert {r["step"]: r[COMPILE_COUNT] for r in train if r["step"] > 1} == {2: 0, 3: 0, 4: 0}
    kept = [r["dynamic/kept_frac"] for r in train]
    assert any(0 < k < 1 for k in kept), f"the filter had nothing to filter: {kept}"


def test_resume_continues_the_data_stream_exactly(straight, tmp_path):
    train_and_evaluate(tiny_config(max_steps=2, **DYNAMIC), tmp_path)
    train_and_evaluate(tiny_config(max_steps=4, **DYNAMIC), tmp_path)
    assert train_rows(tmp_path) == train_rows(straight)
    a, b = checkpoint_state(straight, 4), checkpoint_state(tmp_path, 4)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
