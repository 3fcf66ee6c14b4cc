"""Sampled-token logprobs and token entropies from logits.

``logits_BTV[:, t]`` must already be aligned with ``targets_BT[:, t]`` (the logits that
*predict* token t, i.e. the model output at position t-1): the caller does the shift.
``temperature`` divides the logits first, so the logprobs are those of the distribution the
sampler drew from (the ratio is 1 on-policy only if both use the same temperature).

    logp[b, t]    = log softmax(logits[b, t] / temperature)[targets[b, t]]
    entropy[b, t] = -sum_v p[b, t, v] log p[b, t, v]      (stop-gradient: a metric only)
"""

import jax
import jax.numpy as jnp


def token_logprobs_and_entropy(
    logits_BTV: jax.Array, targets_BT: jax.Array, temperature: float
) -> tuple[jax.Array, jax.Array]:
    """Returns ``(logp_BT, entropy_BT)`` in float32; entropy carries no gradient."""
    logprobs_BTV = jax.nn.log_softmax(logits_BTV.astype(jnp.float32) / temperature, axis=-1)
    logp_BT = jnp.take_along_axis(logprobs_BTV, targets_BT[..., None], axis=-1)[..., 0]
    logprobs_BTV = jax.lax.stop_gradient(logprobs_BTV)
    entropy_BT = -jnp.sum(jnp.exp(logprobs_BTV) * logprobs_BTV, axis=-1)
    return logp_BT, entropy_BT
