"""Sampled-token logprobs and token entropies from logits.

``logits_RLV[:, t]`` must already be aligned with ``targets_RL[:, t]`` (the logits that
*predict* token t, i.e. the model output at position t-1): the caller does the shift.
``temperature`` divides the logits first, so the logprobs are those of the distribution the
sampler drew from (the ratio is 1 on-policy only if both use the same temperature).

    logp[b, t]    = log softmax(logits[b, t] / temperature)[targets[b, t]]
    entropy[b, t] = -sum_v p[b, t, v] log p[b, t, v]      (stop-gradient: a metric only)
"""

import jax
import jax.numpy as jnp


def token_logprobs_and_entropy(
    logits_RLV: jax.Array, targets_RL: jax.Array, temperature: float
) -> tuple[jax.Array, jax.Array]:
    """Returns ``(logp_RL, entropy_RL)`` in float32; entropy carries no gradient."""
    logprobs_RLV = jax.nn.log_softmax(logits_RLV.astype(jnp.float32) / temperature, axis=-1)
    logp_RL = jnp.take_along_axis(logprobs_RLV, targets_RL[..., None], axis=-1)[..., 0]
    logprobs_RLV = jax.lax.stop_gradient(logprobs_RLV)
    entropy_RL = -jnp.sum(jnp.exp(logprobs_RLV) * logprobs_RLV, axis=-1)
    return logp_RL, entropy_RL
