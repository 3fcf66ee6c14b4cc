"""Token aggregation: how per-token losses ``l[i, t]`` become one scalar, split for micro-batching.

Every aggregation is written as

    loss = sum_{i, t} w[i, t] * l[i, t] / Z

where the *token weights* ``w`` depend only on the row i itself (its mask), and the
*normalizer* ``Z`` is one scalar computed once over the **full** batch, before it is split
into micro-batches. Rows are never split, so for any partition of the rows into
micro-batches ``loss = sum_m (sum_{i in m, t} w[i, t] l[i, t]) / Z`` exactly, and the
gradients add up the same way: accumulation is a plain sum, never a mean of means.

With ``m`` the completion mask [R, L], ``n_i = max(sum_t m[i, t], 1)``, R the rows of the
full batch and L the constant maximum completion length:

    sequence_mean      w = m / n_i        Z = R                  (GRPO, GSPO)
    token_mean         w = m              Z = max(sum m, 1)      (BNPO, DAPO)
    token_sum_max_len  w = m              Z = R * L              (Dr. GRPO)

``R`` counts every row, including rows with no completion tokens (as TRL does).
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Aggregation:
    """Token weights (per row, local) and the global normalizer of one aggregation."""

    token_weights: Callable[[jax.Array], jax.Array]  # mask_RL -> w_RL
    normalizer: Callable[[jax.Array, int], jax.Array]  # (full mask_RL, max_len) -> scalar Z


def _mask_f32(mask_RL: jax.Array) -> jax.Array:
    return mask_RL.astype(jnp.float32)


def _per_sequence_mean_weights(mask_RL: jax.Array) -> jax.Array:
    m_RL = _mask_f32(mask_RL)
    return m_RL / jnp.maximum(jnp.sum(m_RL, axis=1, keepdims=True), 1.0)


def _num_rows(mask_RL: jax.Array, max_len: int) -> jax.Array:
    del max_len
    return jnp.asarray(mask_RL.shape[0], jnp.float32)


def _num_tokens(mask_RL: jax.Array, max_len: int) -> jax.Array:
    del max_len
    return jnp.maximum(jnp.sum(_mask_f32(mask_RL)), 1.0)


def _rows_times_max_len(mask_RL: jax.Array, max_len: int) -> jax.Array:
    return jnp.asarray(mask_RL.shape[0] * max_len, jnp.float32)


AGGREGATIONS: dict[str, Aggregation] = {
    "sequence_mean": Aggregation(_per_sequence_mean_weights, _num_rows),
    "token_mean": Aggregation(_mask_f32, _num_tokens),
    "token_sum_max_len": Aggregation(_mask_f32, _rows_times_max_len),
}
