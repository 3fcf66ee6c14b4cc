"""Sampled-token logprobs and entropies against NumPy."""

import jax
import jax.numpy as jnp
import numpy as np

from rlvr_jax.rl.logprobs import token_logprobs_and_entropy


def test_logprobs_and_entropy_match_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 7)).astype(np.float32) * 3
    targets = rng.integers(0, 7, size=(2, 3))
    temperature = 0.7
    logp, entropy = token_logprobs_and_entropy(jnp.asarray(logits), jnp.asarray(targets), 0.7)
    z = logits.astype(np.float64) / temperature
    logq = z - z.max(-1, keepdims=True)
    logq = logq - np.log(np.exp(logq).sum(-1, keepdims=True))
    expected_logp = np.take_along_axis(logq, targets[..., None], -1)[..., 0]
    np.testing.assert_allclose(logp, expected_logp, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(entropy, -(np.exp(logq) * logq).sum(-1), rtol=1e-5, atol=1e-6)


def test_entropy_carries_no_gradient():
    logits = jnp.ones((1, 2, 5))
    grad = jax.grad(lambda x: token_logprobs_and_entropy(x, jnp.zeros((1, 2), int), 1.0)[1].sum())
    assert float(jnp.abs(grad(logits)).sum()) == 0.0
