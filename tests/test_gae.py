"""PPO's credit assignment against NumPy references written from the papers.

GAE (Schulman et al., 2016), eq. 16: A_t = sum_l (gamma lambda)^l delta_{t+l}, written here
as the explicit double loop, not as the recursion the library uses.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlvr_jax.rl.gae import generalized_advantages, last_token_rewards, whiten
from rlvr_jax.rl.value import clipped_value_loss, init_value_head, value_head

LENGTHS = [5, 3, 1, 4]  # masked tails of 0, 2, 4 and 1 tokens
L = 5


def masks() -> np.ndarray:
    return (np.arange(L)[None, :] < np.array(LENGTHS)[:, None]).astype(np.int32)


def reference_gae(rewards, values, lengths, gamma, lam):
    adv = np.zeros_like(rewards, dtype=np.float64)
    for i, n in enumerate(lengths):
        v = [values[i, t] if t < n else 0.0 for t in range(n + 1)]  # V = 0 past the end
        deltas = [rewards[i, t] + gamma * v[t + 1] - v[t] for t in range(n)]
        for t in range(n):
            adv[i, t] = sum((gamma * lam) ** k * deltas[t + k] for k in range(n - t))
    return adv, (adv + values) * masks()


def test_gae_matches_the_explicit_sum_with_masked_tails():
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(4, L)).astype(np.float32)
    values = rng.normal(size=(4, L)).astype(np.float32)
    gamma, lam = 0.9, 0.8
    adv, ret = generalized_advantages(rewards, values, masks(), gamma, lam)
    ref_adv, ref_ret = reference_gae(rewards, values, LENGTHS, gamma, lam)
    np.testing.assert_allclose(adv, ref_adv, atol=1e-5)
    np.testing.assert_allclose(ret, ref_ret, atol=1e-5)
    assert np.all(np.asarray(adv)[masks() == 0] == 0.0)  # garbage in the tails is ignored
    assert np.all(np.asarray(ret)[masks() == 0] == 0.0)


def test_gae_special_cases():
    """lambda = 1: A_t = discounted return - V_t; lambda = 0: A_t = the one-step TD error."""
    rewards = np.zeros((1, 4), np.float32)
    rewards[0, 3] = 1.0
    values = np.array([[0.5, 0.25, -0.5, 0.75]], np.float32)
    mask = np.ones((1, 4), np.int32)
    adv, ret = generalized_advantages(rewards, values, mask, 0.5, 1.0)
    discounted = np.array([0.5**3, 0.5**2, 0.5, 1.0])
    np.testing.assert_allclose(adv[0], discounted - values[0], atol=1e-6)
    np.testing.assert_allclose(ret[0], discounted, atol=1e-6)
    adv0, _ = generalized_advantages(rewards, values, mask, 0.5, 0.0)
    next_v = np.array([0.25, -0.5, 0.75, 0.0])
    np.testing.assert_allclose(adv0[0], rewards[0] + 0.5 * next_v - values[0], atol=1e-6)


def test_last_token_rewards_place_the_score_on_the_stop_token():
    scores = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    r = np.asarray(last_token_rewards(scores, masks()))
    expected = np.zeros((4, L), np.float32)
    for i, n in enumerate(LENGTHS):
        expected[i, n - 1] = scores[i]
    np.testing.assert_array_equal(r, expected)


def test_whiten_over_masked_tokens():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, size=(4, L)).astype(np.float32)
    m = masks()
    w = np.asarray(whiten(x, m))
    kept = x[m > 0].astype(np.float64)
    np.testing.assert_allclose(w[m > 0], (kept - kept.mean()) / (kept.std() + 1e-8), atol=1e-5)
    assert np.all(w[m == 0] == 0.0)


def test_clipped_value_loss_matches_ppo2():
    v = np.array([0.0, 1.0, 2.0, -1.0], np.float32)
    old = np.array([0.5, 0.5, 0.5, 0.5], np.float32)
    ret = np.array([1.0, 0.0, 2.5, -2.0], np.float32)
    c = 0.2
    v_clip = old + np.clip(v - old, -c, c)
    expected = 0.5 * np.maximum((v - ret) ** 2, (v_clip - ret) ** 2)
    loss, clipped = clipped_value_loss(v[None], old[None], ret[None], c)
    np.testing.assert_allclose(loss[0], expected, atol=1e-6)
    np.testing.assert_array_equal(clipped[0], (v_clip - ret) ** 2 > (v - ret) ** 2)
    unclipped, none = clipped_value_loss(v[None], old[None], ret[None], None)
    np.testing.assert_allclose(unclipped[0], 0.5 * (v - ret) ** 2, atol=1e-6)
    assert not np.any(none)


@pytest.mark.parametrize("clip", [None, 0.2])
def test_value_loss_gradient(clip):
    """d/dV of 1/2 (V - G)^2 is V - G on the unclipped branch; 0 where the clip is active."""
    old = jnp.array([[0.0, 0.0]])
    ret = jnp.array([[1.0, -1.0]])
    v = jnp.array([[0.1, -0.5]])  # token 1: |V - V_old| > 0.2, clipped branch is larger
    grad = jax.grad(lambda v: jnp.sum(clipped_value_loss(v, old, ret, clip)[0]))(v)
    expected = [0.1 - 1.0, -0.5 + 1.0] if clip is None else [0.1 - 1.0, 0.0]
    np.testing.assert_allclose(grad[0], expected, atol=1e-6)


def test_value_head_is_linear_and_starts_at_zero():
    head = init_value_head(6)
    h = np.random.default_rng(2).normal(size=(2, 3, 6)).astype(np.float32)
    assert np.all(np.asarray(value_head(head, h)) == 0.0)
    head = {"kernel": jnp.arange(6.0), "bias": jnp.asarray(0.5)}
    np.testing.assert_allclose(value_head(head, h), h @ np.arange(6.0) + 0.5, atol=1e-5)
