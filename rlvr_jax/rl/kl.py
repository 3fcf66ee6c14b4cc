"""Per-token estimators of KL(policy || reference) from sampled-token logprobs (Schulman, 2020).

With ``d = ref_logp - logp`` on tokens sampled from the policy:

    k1 = -d = logp - ref_logp            unbiased, high variance, can be negative
    k2 = d^2 / 2                         biased, low variance, >= 0
    k3 = exp(d) - d - 1                  unbiased, low variance, >= 0 (GRPO's choice)

Inputs are [R, L] float arrays; outputs are [R, L] and are *not* masked (the loss masks).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

KLFn = Callable[[jax.Array, jax.Array], jax.Array]


def kl_k1(logp_RL: jax.Array, ref_logp_RL: jax.Array) -> jax.Array:
    """k1 = logp - ref_logp."""
    return logp_RL - ref_logp_RL


def kl_k2(logp_RL: jax.Array, ref_logp_RL: jax.Array) -> jax.Array:
    """k2 = (logp - ref_logp)^2 / 2."""
    return 0.5 * jnp.square(logp_RL - ref_logp_RL)


def kl_k3(logp_RL: jax.Array, ref_logp_RL: jax.Array) -> jax.Array:
    """k3 = exp(ref_logp - logp) - (ref_logp - logp) - 1."""
    d_RL = ref_logp_RL - logp_RL
    return jnp.exp(d_RL) - d_RL - 1.0


KL_ESTIMATORS: dict[str, KLFn] = {"k1": kl_k1, "k2": kl_k2, "k3": kl_k3}


def get_kl_estimator(name: str) -> KLFn:
    """Looks up a KL estimator by its config name (``rl.kl_estimator``)."""
    if name not in KL_ESTIMATORS:
        raise ValueError(
            f"rl.kl_estimator: unknown estimator {name!r}; choose one of {sorted(KL_ESTIMATORS)}"
        )
    return KL_ESTIMATORS[name]
