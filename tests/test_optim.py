"""Optimizer: schedules and clip+AdamW against NumPy written from the formulas."""

import dataclasses
import math

import jax.numpy as jnp
import numpy as np
import pytest

from rlvr_jax.optim import OptimConfig, make_optimizer, make_schedule


def make_cfg(**overrides):
    cfg = OptimConfig(
        learning_rate=1e-3,
        schedule="warmup_cosine",
        warmup_steps=3,
        total_steps=11,
        min_lr_ratio=0.1,
        weight_decay=0.01,
        b1=0.9,
        b2=0.99,
        eps=1e-8,
        max_grad_norm=1.0,
    )
    return dataclasses.replace(cfg, **overrides)


def expected_lr(cfg, s):
    if s < cfg.warmup_steps:
        return cfg.learning_rate * (s + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.learning_rate
    p = min((s - cfg.warmup_steps) / (cfg.total_steps - cfg.warmup_steps), 1.0)
    low = cfg.min_lr_ratio * cfg.learning_rate
    return low + (cfg.learning_rate - low) * 0.5 * (1 + math.cos(math.pi * p))


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"warmup_steps": 0},
        {"schedule": "constant"},
        {"schedule": "constant", "warmup_steps": 0},
    ],
)
def test_schedule(overrides):
    cfg = make_cfg(**overrides)
    schedule = make_schedule(cfg)
    got = [float(schedule(s)) for s in range(14)]
    np.testing.assert_allclose(got, [expected_lr(cfg, s) for s in range(14)], rtol=1e-6)
    assert got[0] > 0  # no update is wasted at lr 0


def test_warmup_cosine_endpoints():
    schedule = make_schedule(make_cfg())
    np.testing.assert_allclose(float(schedule(3)), 1e-3, rtol=1e-6)  # peak right after warmup
    np.testing.assert_allclose(float(schedule(11)), 1e-4, rtol=1e-5)  # min_lr_ratio * lr at S
    np.testing.assert_allclose(float(schedule(50)), 1e-4, rtol=1e-5)  # and stays there


def numpy_clip_adamw(cfg, params, grads_list):
    p, m, v = params.astype(np.float64), np.zeros_like(params), np.zeros_like(params)
    for t, g in enumerate(grads_list, start=1):
        norm = np.sqrt(np.sum(g**2))
        if cfg.max_grad_norm is not None and norm > cfg.max_grad_norm:
            g = g * cfg.max_grad_norm / norm
        m = cfg.b1 * m + (1 - cfg.b1) * g
        v = cfg.b2 * v + (1 - cfg.b2) * g**2
        m_hat, v_hat = m / (1 - cfg.b1**t), v / (1 - cfg.b2**t)
        lr = expected_lr(cfg, t - 1)
        p = p - lr * (m_hat / (np.sqrt(v_hat) + cfg.eps) + cfg.weight_decay * p)
    return p


@pytest.mark.parametrize("max_grad_norm", [1.0, None])
def test_clip_then_adamw_matches_numpy(max_grad_norm):
    cfg = make_cfg(max_grad_norm=max_grad_norm)
    params = np.array([0.5, -1.0, 2.0], np.float32)
    # The first gradient is clipped (norm 10), the next ones are not: clipping changes
    # Adam's second step because it changes the relative scale of the moments.
    grads_list = [np.array([6.0, 8.0, 0.0]), np.array([0.3, -0.4, 0.1]), np.array([0.1, 0.2, -0.2])]
    opt = make_optimizer(cfg)
    p = jnp.asarray(params)
    state = opt.init(p)
    for g in grads_list:
        updates, state = opt.update(jnp.asarray(g, jnp.float32), state, p)
        p = p + updates
    expected = numpy_clip_adamw(cfg, params, grads_list)
    np.testing.assert_allclose(p, expected, rtol=1e-5, atol=1e-7)
    if max_grad_norm is not None:
        unclipped = numpy_clip_adamw(make_cfg(max_grad_norm=None), params, grads_list)
        assert np.max(np.abs(unclipped - expected)) > 1e-5


@pytest.mark.parametrize(
    "overrides,key",
    [
        ({"learning_rate": 0.0}, "optim.learning_rate"),
        ({"schedule": "linear"}, "optim.schedule"),
        ({"warmup_steps": -1}, "optim.warmup_steps"),
        ({"total_steps": 0}, "optim.total_steps"),
        ({"warmup_steps": 11}, "optim.warmup_steps"),
        ({"min_lr_ratio": 1.5}, "optim.min_lr_ratio"),
        ({"weight_decay": -1.0}, "optim.weight_decay"),
        ({"b1": 1.0}, "optim.b1"),
        ({"b2": -0.1}, "optim.b2"),
        ({"eps": 0.0}, "optim.eps"),
        ({"max_grad_norm": 0.0}, "optim.max_grad_norm"),
    ],
)
def test_validation_names_the_key(overrides, key):
    with pytest.raises(ValueError, match=key):
        make_cfg(**overrides)


def test_constant_schedule_allows_warmup_beyond_total_steps():
    make_cfg(schedule="constant", warmup_steps=20)  # total_steps only matters for cosine
