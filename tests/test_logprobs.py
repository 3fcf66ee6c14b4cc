"""Sampled-token logprobs and entropies against NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_rl import tiny_model

from rlvr_jax.models.decoder import Decoder, head_logits
from rlvr_jax.rl.head_logprobs import from_chunks, head_token_logprobs, to_chunks
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


def _head_inputs(length, seed=2, rows=3, hidden=8, vocab=11):
    rng = np.random.default_rng(seed)
    hidden_RLD = jnp.asarray(rng.normal(size=(rows, length, hidden)), jnp.float32)
    kernel_DV = jnp.asarray(rng.normal(size=(hidden, vocab)), jnp.float32)
    ids_RL = jnp.asarray(rng.integers(0, vocab, (rows, length)), jnp.int32)
    weights_RL = jnp.asarray(rng.normal(size=(rows, length)), jnp.float32)
    return hidden_RLD, kernel_DV, ids_RL, weights_RL


@pytest.mark.parametrize("softcap", [None, 2.5])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("length", [5, 16, 37])
def test_head_logprobs_forward_gradient_equals_autodiff(softcap, temperature, length):
    """The hidden-state gradient formed in the forward (and the kernel's, replayed in the
    backward) equal autodiff of the whole-logits computation."""
    hidden_RLD, kernel_DV, ids_RL, weights_RL = _head_inputs(length)

    def whole(hidden, kernel):
        logits = head_logits(hidden, kernel, softcap)
        return token_logprobs_and_entropy(logits, ids_RL, temperature)

    def fused(hidden, kernel):
        return head_token_logprobs(hidden, kernel, ids_RL, softcap, temperature)

    for a, b in zip(fused(hidden_RLD, kernel_DV), whole(hidden_RLD, kernel_DV), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    grads = [
        jax.grad(lambda h, k, fn=fn: jnp.sum(fn(h, k)[0] * weights_RL), argnums=(0, 1))(
            hidden_RLD, kernel_DV
        )
        for fn in (fused, whole)
    ]
    for a, b in zip(*grads, strict=True):
        assert float(jnp.abs(b).max()) > 0.1
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # The entropy output carries no gradient, as in token_logprobs_and_entropy.
    entropy_grad = jax.grad(lambda h: jnp.sum(fused(h, kernel_DV)[1]))(hidden_RLD)
    assert float(jnp.abs(entropy_grad).max()) == 0.0


def test_head_logprobs_frozen_kernel_skips_the_replay():
    """With the kernel not differentiated (a LoRA policy's frozen head), the compiled
    gradient runs two head-sized matmuls per chunk (logits, input gradient), against three
    for rematerialized chunks (logits, replay, input gradient) and four for a trained head."""
    hidden_RLD, kernel_DV, ids_RL, weights_RL = _head_inputs(32, rows=4, hidden=32, vocab=512)

    def flops(fn, argnums):
        loss = lambda h, k: jnp.sum(fn(h, k)[0] * weights_RL)  # noqa: E731
        grad = jax.jit(jax.value_and_grad(loss, argnums=argnums))  # a loss needs logp too
        return grad.lower(hidden_RLD, kernel_DV).compile().cost_analysis()["flops"]

    def fused(h, k):
        return head_token_logprobs(h, k, ids_RL, None, 1.0)

    def remat(h, k):  # two chunks of 16, as policy_logprobs.map_logit_chunks
        @jax.checkpoint
        def one(xs):
            return token_logprobs_and_entropy(head_logits(xs[0], k, None), xs[1], 1.0)

        outs = jax.lax.map(one, (to_chunks(h, 16), to_chunks(ids_RL, 16)))
        return tuple(from_chunks(x, 32) for x in outs)

    # XLA's cost analysis counts a loop body once: the figures are per chunk.
    chunk_matmul = 2 * 4 * 16 * 32 * 512
    frozen, trained, naive = flops(fused, 0), flops(fused, (0, 1)), flops(remat, 0)
    assert 1.9 * chunk_matmul < frozen < 2.5 * chunk_matmul, frozen / chunk_matmul
    assert naive > frozen + 0.8 * chunk_matmul, (naive / chunk_matmul, frozen / chunk_matmul)
    assert trained > frozen + 1.8 * chunk_matmul, (trained / chunk_matmul, frozen / chunk_matmul)
