"""Sampled-token logprobs and entropies against NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_rl import tiny_model

from rlvr_jax.models.decoder import Decoder
from rlvr_jax.rl.logprobs import token_logprobs_and_entropy
from rlvr_jax.rl.policy_logprobs import logprobs_from_hidden


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


@pytest.mark.parametrize("length", [5, 16, 37])  # under, at and past a chunk (16), ragged
def test_chunked_lm_head_equals_whole_logits(length):
    """logprobs_from_hidden runs the LM head 16 tokens at a time, rematerialized: the same
    values, and the same gradients for the hidden states and the (tied) embedding."""
    model, params = tiny_model(num_layers=1)
    rng = np.random.default_rng(1)
    hidden = jnp.asarray(rng.normal(size=(4, length, model.cfg.hidden_size)), jnp.float32)
    ids = jnp.asarray(rng.integers(0, model.cfg.vocab_size, (4, length)), jnp.int32)
    mask = jnp.asarray(rng.random((4, length)) < 0.8, jnp.int32)

    def whole(params, hidden):
        logits = model.apply({"params": params}, hidden, method=Decoder.logits)
        logp, entropy = token_logprobs_and_entropy(logits, ids, 0.9)
        return jnp.where(mask > 0, logp, 0.0), jnp.where(mask > 0, entropy, 0.0)

    def chunked(params, hidden):
        return logprobs_from_hidden(model, {"params": params}, hidden, ids, mask, 0.9)

    for fn in (whole, chunked):
        assert fn(params, hidden)[0].shape == (4, length)
    np.testing.assert_allclose(chunked(params, hidden)[0], whole(params, hidden)[0], atol=1e-6)
    np.testing.assert_allclose(chunked(params, hidden)[1], whole(params, hidden)[1], atol=1e-5)
    weights = jnp.asarray(rng.normal(size=(4, length)), jnp.float32)
    grads = {
        fn: jax.grad(lambda p, h, fn=fn: jnp.sum(fn(p, h)[0] * weights), argnums=(0, 1))(
            params, hidden
        )
        for fn in (whole, chunked)
    }
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
        grads[chunked],
        grads[whole],
    )
