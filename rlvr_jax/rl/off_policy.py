"""Off-policy correction between the distribution the sampler drew from and the trainer's.

The sampler returns, per token, the log-probability under the distribution it actually
sampled from: the logits divided by the temperature, top-k and top-p applied, renormalized
(``Completions.sampling_logprobs``). The trainer recomputes the same token's probability
under the *same* transform of its own logits (``sampling_distribution_logprobs``), with the
policy that sampled (the rollout scorer runs it once per rollout). Their ratio

    w[i, t] = mu_trainer(y_t | s_t) / mu_sampler(y_t | s_t)            token level
    w[i]    = prod_t w[i, t]                                             sequence level

is 1 when sampler and trainer agree, and measures their mismatch otherwise (a different
engine or precision, a stale sampler). Comparing the sampler's truncated probability with
the trainer's *untruncated* one instead is the classic mistake (TRL issue 6789): with top-p
the naive ratio is off by the kept probability mass even when nothing else differs.

The weights multiply the per-token policy loss, stop-gradient (Yao et al., 2025, "Your
efficient RL framework secretly brings you off-policy RL training"); with mu > 1 they sit
in front of the usual clipped ratio pi / pi_old, which is unchanged:

    tis   w <- min(w, C)                         truncated importance sampling
    mis   w <- w * [w <= C]                       masked: tokens / sequences beyond C drop out

Metrics (over completion tokens; at sequence level each row's weight counts per token):
``off_policy/weight_mean``, ``off_policy/weight_max`` (before the cap),
``off_policy/capped_frac`` (w > C) and ``off_policy/logprob_gap`` (mean |log w| per token).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from rlvr_jax.sampling.config import SamplingConfig
from rlvr_jax.sampling.filters import sampling_logits

CORRECTIONS = ("none", "tis", "mis")
LEVELS = ("token", "sequence")


@dataclasses.dataclass(frozen=True)
class OffPolicyConfig:
    """Importance weights sampler -> trainer (`config.rl.off_policy`)."""

    correction: str  # 'none' | 'tis' (truncate at cap) | 'mis' (mask beyond cap)
    level: str  # 'token' | 'sequence' (product of the token ratios)
    cap: float  # C >= 1

    def __post_init__(self):
        if self.correction not in CORRECTIONS:
            raise ValueError(
                f"rl.off_policy.correction: unknown {self.correction!r}; choose one of "
                f"{CORRECTIONS}"
            )
        if self.level not in LEVELS:
            raise ValueError(f"rl.off_policy.level: unknown {self.level!r}; choose one of {LEVELS}")
        if not self.cap >= 1.0:
            raise ValueError(f"rl.off_policy.cap must be >= 1, got {self.cap}")

    @property
    def enabled(self) -> bool:
        return self.correction != "none"


def sampling_distribution_logprobs(
    logits_RLV: jax.Array, ids_RL: jax.Array, cfg: SamplingConfig
) -> jax.Array:
    """``[R, L]`` log-probabilities of ``ids`` under the sampler's transform of the logits
    (temperature, top-k, top-p; ``sampling.filters``), -inf where the token was filtered."""
    R, L, V = logits_RLV.shape
    filtered = sampling_logits(logits_RLV.reshape(R * L, V), cfg).reshape(R, L, V)
    logprobs_RLV = jax.nn.log_softmax(filtered, axis=-1)
    return jnp.take_along_axis(logprobs_RLV, ids_RL[..., None], axis=-1)[..., 0]


def token_log_ratios(
    trainer_logp_RL: jax.Array, sampler_logp_RL: jax.Array, mask_RL: jax.Array
) -> jax.Array:
    """``log mu_trainer - log mu_sampler`` per completion token, 0 off the mask."""
    return jnp.where(mask_RL > 0, trainer_logp_RL - sampler_logp_RL.astype(jnp.float32), 0.0)


def importance_weights(
    log_ratio_RL: jax.Array, mask_RL: jax.Array, cfg: OffPolicyConfig
) -> tuple[jax.Array, jax.Array]:
    """``(weights_RL, raw_RL)`` from the token log-ratios: the corrected weights and the
    weights before the cap, both 0 off the mask."""
    valid = mask_RL > 0
    log_w_RL = log_ratio_RL
    if cfg.level == "sequence":
        log_w_RL = jnp.broadcast_to(jnp.sum(log_w_RL, axis=1, keepdims=True), log_w_RL.shape)
    raw_RL = jnp.where(valid, jnp.exp(log_w_RL), 0.0)
    if cfg.correction == "tis":
        weights_RL = jnp.minimum(raw_RL, cfg.cap)
    elif cfg.correction == "mis":
        weights_RL = jnp.where(raw_RL <= cfg.cap, raw_RL, 0.0)
    else:
        raise ValueError(f"rl.off_policy.correction = {cfg.correction!r} computes no weights")
    return weights_RL, raw_RL


def off_policy_metrics(
    log_ratio_RL: jax.Array, mask_RL: jax.Array, cfg: OffPolicyConfig
) -> dict[str, jax.Array]:
    """The module docstring's metrics, over the full batch."""
    _, raw_RL = importance_weights(log_ratio_RL, mask_RL, cfg)
    m_RL = mask_RL.astype(jnp.float32)
    count = jnp.maximum(jnp.sum(m_RL), 1.0)
    return {
        "off_policy/weight_mean": jnp.sum(m_RL * raw_RL) / count,
        "off_policy/weight_max": jnp.max(jnp.where(m_RL > 0, raw_RL, 0.0)),
        "off_policy/capped_frac": jnp.sum(m_RL * (raw_RL > cfg.cap)) / count,
        "off_policy/logprob_gap": jnp.sum(m_RL * jnp.abs(log_ratio_RL)) / count,
    }
