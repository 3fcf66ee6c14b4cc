"""Completion-token logprobs through the LM head, chunked, with the hidden states' gradient
formed in the forward pass.

The head's logits [R, L, V] (64 rows x 256 tokens x 49152 vocabulary: 3.2 GB in float32)
are never built: the head runs ``LOGITS_CHUNK_TOKENS`` tokens at a time. Differentiated
naively (each chunk rematerialized), it runs three head-sized matmuls per chunk: the
forward, its replay in the backward, and the input gradient ``dz @ W^T``. But the input
gradient of a token's logprob is known while the softmax is in hand:

    logp_t = z_t[y_t] - logsumexp(z_t),      z_t = c(h_t @ W) / temperature
    d logp_t / d h_t = ((onehot(y_t) - softmax(z_t)) * c'(h_t @ W) / temperature) @ W^T

(c: the final-logit softcap, or the identity). The forward keeps that [D] vector per token
([R, L, D]: D / V of the logits' size) and the backward of the hidden states is one
multiply: two head-sized matmuls per chunk instead of three, and one pass of exponentials.
A trainable head (full fine-tuning) gets its kernel gradient from a replay of the chunks
in the backward; with a frozen head (LoRA) nothing uses it and XLA drops that code.

Entropy is a metric: it carries no gradient (as in ``logprobs.token_logprobs_and_entropy``).
Without differentiation the plain forward runs (the scorer's reference logprobs).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from rlvr_jax.models.decoder import head_logits
from rlvr_jax.rl.logprobs import token_logprobs_and_entropy

# Completion tokens per LM-head chunk: at most [R, 16, V] logits are alive at once (64 rows
# x 48 tokens x 49152 was 604 MB per copy before chunking, the train step's largest).
LOGITS_CHUNK_TOKENS = 16


def to_chunks(x_RL: jax.Array, chunk: int) -> jax.Array:
    """[R, L, ...] -> [n, R, chunk, ...], L zero-padded to n * chunk."""
    R, L = x_RL.shape[:2]
    n = -(-L // chunk)
    x_RL = jnp.pad(x_RL, [(0, 0), (0, n * chunk - L)] + [(0, 0)] * (x_RL.ndim - 2))
    return jnp.moveaxis(x_RL.reshape(R, n, chunk, *x_RL.shape[2:]), 1, 0)


def from_chunks(x_NRC: jax.Array, length: int) -> jax.Array:
    """[n, R, chunk, ...] -> [R, length, ...] (`to_chunks` undone)."""
    x_RNC = jnp.moveaxis(x_NRC, 0, 1)
    return x_RNC.reshape(x_RNC.shape[0], -1, *x_RNC.shape[3:])[:, :length]


def map_token_chunks(fn: Callable[..., tuple[jax.Array, ...]], *xs_RL: jax.Array):
    """`fn(*chunks)` over ``LOGITS_CHUNK_TOKENS`` tokens of the [R, L, ...] arrays at a time
    (`lax.map`); returns its outputs merged back to [R, L, ...]."""
    L = xs_RL[0].shape[1]
    chunk = min(LOGITS_CHUNK_TOKENS, L)
    outs = jax.lax.map(lambda xs: fn(*xs), tuple(to_chunks(x, chunk) for x in xs_RL))
    return tuple(from_chunks(x, L) for x in outs)


def _chunk(hidden_RCD, kernel_DV, ids_RC, softcap, temperature):
    """(logp, entropy, d logp / d raw logits [R, C, V]) of one chunk, float32."""
    logits_RCV = head_logits(hidden_RCD, kernel_DV, softcap)
    logq_RCV = jax.nn.log_softmax(logits_RCV / temperature, axis=-1)
    logp_RC = jnp.take_along_axis(logq_RCV, ids_RC[..., None], axis=-1)[..., 0]
    q_RCV = jnp.exp(logq_RCV)
    entropy_RC = -jnp.sum(q_RCV * logq_RCV, axis=-1)
    onehot_RCV = ids_RC[..., None] == jnp.arange(logits_RCV.shape[-1], dtype=ids_RC.dtype)
    dlogits_RCV = (onehot_RCV - q_RCV) / temperature
    if softcap is not None:  # logits = cap * tanh(raw / cap): d/d raw = 1 - (logits / cap)^2
        dlogits_RCV = dlogits_RCV * (1.0 - jnp.square(logits_RCV / softcap))
    return logp_RC, entropy_RC, dlogits_RCV


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def head_token_logprobs(
    hidden_RLD: jax.Array,
    kernel_DV: jax.Array,
    ids_RL: jax.Array,
    softcap: float | None,
    temperature: float,
) -> tuple[jax.Array, jax.Array]:
    """``(logp_RL, entropy_RL)`` float32 of tokens ``ids_RL`` under the head
    ``c(hidden @ kernel) / temperature`` (module docstring), ``LOGITS_CHUNK_TOKENS`` at a time."""

    def one(hidden_RCD, ids_RC):
        logits_RCV = head_logits(hidden_RCD, kernel_DV, softcap)
        return token_logprobs_and_entropy(logits_RCV, ids_RC, temperature)

    return map_token_chunks(one, hidden_RLD, ids_RL)


def _fwd(hidden_RLD, kernel_DV, ids_RL, softcap, temperature):
    kernel_DV32 = kernel_DV.astype(jnp.float32)

    def one(hidden_RCD, ids_RC):
        logp_RC, entropy_RC, dlogits_RCV = _chunk(
            hidden_RCD, kernel_DV, ids_RC, softcap, temperature
        )
        dhidden_RCD = jnp.dot(dlogits_RCV, kernel_DV32.T, preferred_element_type=jnp.float32)
        return logp_RC, entropy_RC, dhidden_RCD

    logp_RL, entropy_RL, dhidden_RLD = map_token_chunks(one, hidden_RLD, ids_RL)
    return (logp_RL, entropy_RL), (hidden_RLD, kernel_DV, ids_RL, dhidden_RLD)


def _bwd(softcap, temperature, residuals, cotangents):
    hidden_RLD, kernel_DV, ids_RL, dhidden_RLD = residuals
    g_RL = cotangents[0]  # the entropy's cotangent is ignored: a metric, no gradient
    d_hidden = (g_RL[..., None] * dhidden_RLD).astype(hidden_RLD.dtype)
    chunk = min(LOGITS_CHUNK_TOKENS, ids_RL.shape[1])

    def kernel_grad(acc_DV, xs):  # dead code unless the head is trained
        hidden_RCD, ids_RC, g_RC = xs
        dlogits_RCV = _chunk(hidden_RCD, kernel_DV, ids_RC, softcap, temperature)[2]
        dlogits_RCV = dlogits_RCV * g_RC[..., None]
        hidden = hidden_RCD.astype(jnp.float32)
        return acc_DV + jnp.einsum("rcd,rcv->dv", hidden, dlogits_RCV), None

    xs = tuple(to_chunks(x, chunk) for x in (hidden_RLD, ids_RL, g_RL))
    d_kernel, _ = jax.lax.scan(kernel_grad, jnp.zeros(kernel_DV.shape, jnp.float32), xs)
    return d_hidden, d_kernel.astype(kernel_DV.dtype), None


head_token_logprobs.defvjp(_fwd, _bwd)
