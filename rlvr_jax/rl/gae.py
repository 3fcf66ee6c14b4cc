"""Token-level credit assignment for PPO: per-token rewards, GAE, returns, whitening.

PPO (Schulman et al., 2017) on a completion of n tokens treats token t as the action taken
in state s_t (the prompt and tokens < t). The verifier scores the whole sequence, so the
reward sits on the last completion token; with the KL penalty in the reward (classic RLHF
PPO, Ziegler et al. 2019 / Ouyang et al. 2022) every token also pays ``beta * kl_t``:

    r[i, t] = score_i * [t == n_i - 1]  -  beta * kl(logp_old, logp_ref)[i, t]

With values ``V[i, t] = V(s_t)`` from the critic that scored the rollout, GAE
(Schulman et al., 2016) with discount ``gamma`` and ``lambda``:

    delta[i, t] = r[i, t] + gamma * V[i, t + 1] - V[i, t]         V[i, t] = 0 for t >= n_i
    A[i, t]     = sum_{k >= 0} (gamma * lambda)^k delta[i, t + k]   (over t + k < n_i)
    G[i, t]     = A[i, t] + V[i, t]                               (the value target)

Masked tails (t >= n_i, after the stop token) are 0 in every output. The mask must be a
prefix (1 up to the stop token, then 0), as the sampler returns it. ``whiten`` normalizes
the advantages over every completion token of the batch (call it on the global batch).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def last_token_rewards(scores_R: jax.Array, mask_RL: jax.Array) -> jax.Array:
    """``[R, L]``: each sequence's score on its last completion token, 0 elsewhere."""
    m_RL = mask_RL.astype(jnp.float32)
    lengths_R = jnp.sum(m_RL, axis=1).astype(jnp.int32)
    last_RL = jnp.arange(mask_RL.shape[1])[None, :] == (lengths_R - 1)[:, None]
    return jnp.where(last_RL, scores_R.astype(jnp.float32)[:, None], 0.0)


def generalized_advantages(
    rewards_RL: jax.Array, values_RL: jax.Array, mask_RL: jax.Array, gamma: float, lam: float
) -> tuple[jax.Array, jax.Array]:
    """``(advantages_RL, returns_RL)`` by the recursion ``A_t = delta_t + gamma lambda A_{t+1}``
    (a reverse ``lax.scan`` over the L tokens; masked tails 0)."""
    m_LR = mask_RL.astype(jnp.float32).T
    r_LR = rewards_RL.astype(jnp.float32).T * m_LR
    v_LR = values_RL.astype(jnp.float32).T * m_LR

    def step(carry, x):
        next_value_R, next_adv_R = carry
        r_R, v_R, m_R = x
        delta_R = r_R + gamma * next_value_R - v_R
        adv_R = (delta_R + gamma * lam * next_adv_R) * m_R
        return (v_R, adv_R), adv_R

    zeros_R = jnp.zeros(rewards_RL.shape[0], jnp.float32)
    _, adv_LR = jax.lax.scan(step, (zeros_R, zeros_R), (r_LR, v_LR, m_LR), reverse=True)
    adv_RL = adv_LR.T
    return adv_RL, (adv_RL + v_LR.T) * m_LR.T


def whiten(x_RL: jax.Array, mask_RL: jax.Array, eps: float = 1e-8) -> jax.Array:
    """``(x - mean) / (std + eps)`` over the masked tokens (population std); 0 off the mask."""
    m_RL = mask_RL.astype(jnp.float32)
    count = jnp.maximum(jnp.sum(m_RL), 1.0)
    mean = jnp.sum(x_RL * m_RL) / count
    var = jnp.sum(jnp.square(x_RL - mean) * m_RL) / count
    return (x_RL - mean) / (jnp.sqrt(var) + eps) * m_RL
