"""Advantage estimators against a NumPy reference written independently, loop by loop."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlvr_jax.rl.advantages import ADVANTAGE_ESTIMATORS, get_advantage_estimator

G = 3
EPS = 1e-4
# Two groups of three samples. Group 0 varies; group 1 is constant (0.1 does not survive
# mean-then-subtract exactly in float32, so exact zeros test the explicit constant-group rule).
REWARDS_CONSTANT_GROUP = [1.0, 0.0, 0.5, 0.1, 0.1, 0.1]
REWARDS_VARIED = [1.0, 0.0, 0.5, 0.3, 0.9, 0.0]


def reference_advantages(name: str, rewards: list[float], group_size: int, eps: float):
    """Per-sample loops in float64; std is unbiased (divides by n - 1)."""
    n = len(rewards)
    all_mean = sum(rewards) / n
    all_std = math.sqrt(sum((x - all_mean) ** 2 for x in rewards) / (n - 1))
    out, zero_groups = [], 0
    for p in range(n // group_size):
        group = rewards[p * group_size : (p + 1) * group_size]
        constant = all(x == group[0] for x in group)
        zero_groups += constant
        if name == "reinforce_pp":  # no group baseline: constant groups move too
            out += [(x - all_mean) / (all_std + eps) for x in group]
            continue
        if constant:
            out += [0.0] * group_size
            continue
        mean = sum(group) / group_size
        std = math.sqrt(sum((x - mean) ** 2 for x in group) / (group_size - 1))
        for i, x in enumerate(group):
            if name == "grpo":
                out.append((x - mean) / (std + eps))
            elif name == "dr_grpo":
                out.append(x - mean)
            elif name == "rloo":
                others = [y for j, y in enumerate(group) if j != i]
                out.append(x - sum(others) / len(others))
            elif name in ("batch", "reinforce_pp_baseline"):
                out.append((x - mean) / (all_std + eps))
    return np.array(out), zero_groups / (n // group_size)


@pytest.mark.parametrize("name", sorted(ADVANTAGE_ESTIMATORS))
@pytest.mark.parametrize("rewards", [REWARDS_CONSTANT_GROUP, REWARDS_VARIED])
def test_matches_reference(name, rewards):
    adv_B, stats = get_advantage_estimator(name)(jnp.array(rewards), G, EPS)
    expected, frac_zero = reference_advantages(name, rewards, G, EPS)
    np.testing.assert_allclose(adv_B, expected, atol=1e-6, rtol=1e-6)
    assert float(stats["frac_zero_std"]) == frac_zero
    np.testing.assert_allclose(stats["advantage/mean"], expected.mean(), atol=1e-6)
    np.testing.assert_allclose(stats["advantage/std"], expected.std(), atol=1e-6)
    np.testing.assert_allclose(stats["advantage/min"], expected.min(), atol=1e-6)
    np.testing.assert_allclose(stats["advantage/max"], expected.max(), atol=1e-6)


GROUP_BASELINES = sorted(set(ADVANTAGE_ESTIMATORS) - {"reinforce_pp"})


def test_reinforce_pp_moves_a_constant_group_against_the_batch():
    adv, stats = get_advantage_estimator("reinforce_pp")(jnp.array([1.0, 1.0, 0.0, 0.0]), 2, EPS)
    assert float(stats["frac_zero_std"]) == 1.0  # counted, yet the advantages are not zero
    assert np.all(np.asarray(adv)[:2] > 0) and np.all(np.asarray(adv)[2:] < 0)


@pytest.mark.parametrize("name", GROUP_BASELINES)
def test_constant_groups_are_exactly_zero_under_jit(name):
    fn = jax.jit(get_advantage_estimator(name), static_argnums=(1, 2))
    adv_B, stats = fn(jnp.array(REWARDS_CONSTANT_GROUP), G, EPS)
    assert np.all(np.asarray(adv_B)[3:] == 0.0)
    assert float(stats["frac_zero_std"]) == 0.5


def test_all_constant_batch_is_finite_zero():
    adv_B, stats = get_advantage_estimator("batch")(jnp.full((6,), 0.7), G, EPS)
    assert np.all(np.asarray(adv_B) == 0.0)
    assert float(stats["frac_zero_std"]) == 1.0


def test_unknown_estimator_names_the_key():
    with pytest.raises(ValueError, match=r"rl.advantage: unknown estimator 'x'; choose one of"):
        get_advantage_estimator("x")


def test_shape_validation():
    fn = get_advantage_estimator("grpo")
    with pytest.raises(ValueError, match="not a multiple of group_size"):
        fn(jnp.zeros(7), G, EPS)
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        fn(jnp.zeros(6), 1, EPS)
    with pytest.raises(ValueError, match="1-D"):
        fn(jnp.zeros((2, 3)), G, EPS)
