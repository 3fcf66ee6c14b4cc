"""The PPO critic's value head and its clipped value loss.

The head is linear on the decoder's final (normed) hidden state, read at the position
that predicts completion token t, so ``V[i, t] = w . h[i, t] + b`` is the value of the
state before token t (see ``policy_logprobs.completion_hidden``). Its tree,
``{"kernel": [D], "bias": []}`` in float32, lives in ``TrainState.critic`` next to the
critic's own LoRA tree when the critic does not share the policy's backbone.

Clipped value loss (PPO2, as in verl and OpenRLHF), with the values ``V_old`` that
scored the rollout and the GAE returns ``G``:

    V_clip = V_old + clip(V - V_old, -c, c)
    l[i, t] = 1/2 max((V - G)^2, (V_clip - G)^2)          (c = None: 1/2 (V - G)^2)
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

PyTree = Any


def init_value_head(hidden_size: int) -> dict[str, jax.Array]:
    """Zeros: the critic starts at V = 0 and learns from the first batch's returns."""
    return {"kernel": jnp.zeros((hidden_size,), jnp.float32), "bias": jnp.zeros((), jnp.float32)}


def value_head(head: PyTree, hidden_RLD: jax.Array) -> jax.Array:
    """``[R, L]`` float32 values of the hidden states ``[R, L, D]``."""
    return jnp.einsum("rld,d->rl", hidden_RLD.astype(jnp.float32), head["kernel"]) + head["bias"]


def clipped_value_loss(
    values_RL: jax.Array,
    old_values_RL: jax.Array,
    returns_RL: jax.Array,
    clip: float | None,
) -> tuple[jax.Array, jax.Array]:
    """``(loss_RL, clipped_RL)``: the per-token loss and where the clipped branch is larger."""
    unclipped_RL = jnp.square(values_RL - returns_RL)
    if clip is None:
        return 0.5 * unclipped_RL, jnp.zeros_like(unclipped_RL, dtype=bool)
    v_clip_RL = old_values_RL + jnp.clip(values_RL - old_values_RL, -clip, clip)
    clipped_sq_RL = jnp.square(v_clip_RL - returns_RL)
    return 0.5 * jnp.maximum(unclipped_RL, clipped_sq_RL), clipped_sq_RL > unclipped_RL
