"""Logit processing for sampling: temperature, top-k, top-p (nucleus).

Filtered-out entries become -inf, so `log_softmax` of the result is the log of the
distribution actually sampled from.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rlvr_jax.sampling.config import SamplingConfig


def sampling_logits(logits_BV: jax.Array, cfg: SamplingConfig) -> jax.Array:
    """Temperature-scaled, top-k then top-p filtered float32 logits (not for greedy)."""
    logits_BV = logits_BV.astype(jnp.float32) / cfg.temperature
    if cfg.top_k and cfg.top_k < logits_BV.shape[-1]:
        kth_largest_B1 = jax.lax.top_k(logits_BV, cfg.top_k)[0][:, -1:]
        logits_BV = jnp.where(logits_BV < kth_largest_B1, -jnp.inf, logits_BV)
    if cfg.top_p < 1.0:
        logits_BV = _top_p(logits_BV, cfg.top_p)
    return logits_BV


def _top_p(logits_BV: jax.Array, top_p: float) -> jax.Array:
    """Keeps the smallest set of largest-probability tokens whose mass reaches top_p."""
    sorted_BV = jnp.sort(logits_BV, axis=-1)[:, ::-1]
    probs_BV = jax.nn.softmax(sorted_BV, axis=-1)
    # Mass strictly before each sorted token; a token is kept while that is < top_p, so the
    # token that crosses the threshold is kept and the top token always is.
    mass_before_BV = jnp.cumsum(probs_BV, axis=-1) - probs_BV
    keep_BV = mass_before_BV < top_p
    num_kept_B1 = jnp.sum(keep_BV, axis=-1, keepdims=True)
    threshold_B1 = jnp.take_along_axis(sorted_BV, num_kept_B1 - 1, axis=-1)
    return jnp.where(logits_BV < threshold_B1, -jnp.inf, logits_BV)
