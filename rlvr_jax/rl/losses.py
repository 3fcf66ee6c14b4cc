"""Policy losses: the clipped surrogate, its ratio levels and aggregations, plus the KL term.

Inputs per (micro-)batch, all float [B, T] unless noted (cast to float32 inside):
``logp_BT`` sampled-token logprobs under the policy being trained (differentiable);
``old_logp_BT`` the same under the policy that sampled (``None`` = on-policy, mu = 1: taken
as ``stop_gradient(logp_BT)``, so the ratio is exactly 1); ``ref_logp_BT`` under the frozen
reference (``None`` when ``beta == 0``: the reference forward is skipped); ``adv_B`` [B];
``mask_BT`` 1 on completion tokens; ``normalizer`` the scalar Z of the aggregation computed
over the full batch by :func:`loss_normalizer`; optional ``entropy_BT`` (metric only).

Per token, with ratio ``r = exp(log_ratio)`` and ``A = adv_B[i]``:

    l = max(-A r, -A clip(r, 1 - eps_low, 1 + eps_high))               PPO clip; DAPO clip-higher
    l = min(l, c |A|)   where A < 0, if dual_clip = c > 1              dual clip (Ye et al., 2020)
    l = l + beta * kl(logp, ref_logp)   if beta > 0                    k1 / k2 / k3, see kl.py

and ``loss = sum_{i,t} w[i,t] l[i,t] / Z`` (see aggregation.py). Log-ratio levels:

    token      log r[i,t] = logp[i,t] - old_logp[i,t]
    sequence   GSPO (Zheng et al., 2025): s_i = exp(1/n_i sum_t m[i,t] (logp - old_logp)[i,t]),
               used per token as s[i,t] = sg(s_i) * exp(logp[i,t] - sg(logp[i,t])) ("GSPO-token"):
               its value is s_i (so the clip acts on the whole sequence) and its gradient
               w.r.t. logp[i,t] is s_i, hence with the per-sequence token mean the gradient
               equals that of the sequence-level GSPO objective exactly.

Registered losses (``rl.loss_type``): ``grpo`` (token ratio, sequence_mean), ``bnpo`` and
``dapo`` (token ratio, token_mean; identical here because Z is always global),
``dr_grpo`` (token ratio, token_sum_max_len), ``gspo`` (sequence ratio, sequence_mean).

Each loss returns ``(loss_contribution, metric_sums)``. Both are additive over micro-batches:
the loss because Z is global, the metrics because they are masked token *sums*;
:func:`finalize_metrics` divides the summed metrics by the summed token count once.
Metric definitions (token fractions over completion tokens):

    policy/clip_frac_low   r < 1 - eps_low  and A < 0   (lower clip active, gradient zero)
    policy/clip_frac_high  r > 1 + eps_high and A > 0   (upper clip active, gradient zero)
    policy/dual_clip_frac  r > c and A < 0              (dual clip active; 0 when disabled)
    policy/ratio_mean      mean r
    kl/mean                mean kl estimate (when ref_logp is given, even if beta = 0)
    policy/entropy         mean entropy (when entropy_BT is given)
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

from rlvr_jax.rl.aggregation import AGGREGATIONS
from rlvr_jax.rl.kl import KL_ESTIMATORS, get_kl_estimator

NUM_TOKENS = "num_tokens"


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Policy-loss hyperparameters; every field is a config key under ``rl``."""

    loss_type: str  # one of POLICY_LOSSES
    eps_low: float  # lower clip: ratio >= 1 - eps_low
    eps_high: float  # upper clip: ratio <= 1 + eps_high (DAPO clip-higher when > eps_low)
    dual_clip: float | None  # None, or c > 1: bound the loss of A < 0 tokens by c |A|
    beta: float  # KL coefficient; 0 skips the reference forward
    kl_estimator: str  # 'k1' | 'k2' | 'k3'
    max_completion_len: int  # L, the constant of dr_grpo's normalizer

    def __post_init__(self):
        if self.loss_type not in POLICY_LOSSES:
            raise ValueError(
                f"rl.loss_type: unknown loss {self.loss_type!r}; "
                f"choose one of {sorted(POLICY_LOSSES)}"
            )
        if not 0.0 < self.eps_low < 1.0:
            raise ValueError(f"rl.eps_low must be in (0, 1), got {self.eps_low}")
        if not self.eps_high > 0.0:
            raise ValueError(f"rl.eps_high must be > 0, got {self.eps_high}")
        if self.dual_clip is not None and not self.dual_clip > 1.0:
            raise ValueError(f"rl.dual_clip must be None or > 1, got {self.dual_clip}")
        if not self.beta >= 0.0:
            raise ValueError(f"rl.beta must be >= 0, got {self.beta}")
        if self.kl_estimator not in KL_ESTIMATORS:
            raise ValueError(
                f"rl.kl_estimator: unknown estimator {self.kl_estimator!r}; "
                f"choose one of {sorted(KL_ESTIMATORS)}"
            )
        if self.max_completion_len < 1:
            raise ValueError(f"rl.max_completion_len must be >= 1, got {self.max_completion_len}")


def token_log_ratio(logp_BT: jax.Array, old_logp_BT: jax.Array, mask_BT: jax.Array) -> jax.Array:
    """Per-token log importance ratio ``logp - old_logp`` (0 off the mask)."""
    return jnp.where(mask_BT > 0, logp_BT - old_logp_BT, 0.0)


def sequence_log_ratio(logp_BT: jax.Array, old_logp_BT: jax.Array, mask_BT: jax.Array) -> jax.Array:
    """GSPO-token log ratio ``sg(log s_i) + logp - sg(logp)`` (0 off the mask)."""
    m_BT = mask_BT.astype(jnp.float32)
    diff_BT = jnp.where(mask_BT > 0, logp_BT - old_logp_BT, 0.0)
    log_s_B = jnp.sum(diff_BT * m_BT, axis=1) / jnp.maximum(jnp.sum(m_BT, axis=1), 1.0)
    log_s_BT = jax.lax.stop_gradient(log_s_B)[:, None] + logp_BT - jax.lax.stop_gradient(logp_BT)
    return jnp.where(mask_BT > 0, log_s_BT, 0.0)


def clipped_surrogate(
    ratio_BT: jax.Array,
    adv_B: jax.Array,
    eps_low: float,
    eps_high: float,
    dual_clip: float | None,
) -> jax.Array:
    """Per-token clipped surrogate loss (to minimize), with the optional dual clip."""
    adv_B1 = adv_B[:, None]
    unclipped_BT = -adv_B1 * ratio_BT
    clipped_BT = -adv_B1 * jnp.clip(ratio_BT, 1.0 - eps_low, 1.0 + eps_high)
    loss_BT = jnp.maximum(unclipped_BT, clipped_BT)
    if dual_clip is not None:
        loss_BT = jnp.where(adv_B1 < 0, jnp.minimum(loss_BT, -dual_clip * adv_B1), loss_BT)
    return loss_BT


def _clipped_policy_loss(
    logp_BT: jax.Array,
    old_logp_BT: jax.Array | None,
    ref_logp_BT: jax.Array | None,
    adv_B: jax.Array,
    mask_BT: jax.Array,
    normalizer: jax.Array,
    cfg: LossConfig,
    entropy_BT: jax.Array | None,
    *,
    log_ratio_fn: Callable[[jax.Array, jax.Array, jax.Array], jax.Array],
    aggregation: str,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    logp_BT = logp_BT.astype(jnp.float32)
    adv_B = adv_B.astype(jnp.float32)
    if old_logp_BT is None:
        old_logp_BT = jax.lax.stop_gradient(logp_BT)
    ratio_BT = jnp.exp(log_ratio_fn(logp_BT, old_logp_BT.astype(jnp.float32), mask_BT))
    loss_BT = clipped_surrogate(ratio_BT, adv_B, cfg.eps_low, cfg.eps_high, cfg.dual_clip)

    m_BT = mask_BT.astype(jnp.float32)
    adv_B1 = adv_B[:, None]
    sums = {
        NUM_TOKENS: jnp.sum(m_BT),
        "policy/clip_frac_low": jnp.sum(m_BT * ((ratio_BT < 1.0 - cfg.eps_low) & (adv_B1 < 0))),
        "policy/clip_frac_high": jnp.sum(m_BT * ((ratio_BT > 1.0 + cfg.eps_high) & (adv_B1 > 0))),
        "policy/dual_clip_frac": (
            jnp.zeros(())
            if cfg.dual_clip is None
            else jnp.sum(m_BT * ((ratio_BT > cfg.dual_clip) & (adv_B1 < 0)))
        ),
        "policy/ratio_mean": jnp.sum(m_BT * jax.lax.stop_gradient(ratio_BT)),
    }

    if ref_logp_BT is not None:
        diff_mask_BT = mask_BT > 0
        ref_BT = jnp.where(diff_mask_BT, ref_logp_BT.astype(jnp.float32), 0.0)
        kl_BT = get_kl_estimator(cfg.kl_estimator)(jnp.where(diff_mask_BT, logp_BT, 0.0), ref_BT)
        sums["kl/mean"] = jnp.sum(m_BT * jax.lax.stop_gradient(kl_BT))
        if cfg.beta > 0:
            loss_BT = loss_BT + cfg.beta * kl_BT
    elif cfg.beta > 0:
        raise ValueError(f"rl.beta = {cfg.beta} > 0 needs the reference logprobs (ref_logp_BT)")
    if entropy_BT is not None:
        sums["policy/entropy"] = jnp.sum(m_BT * jax.lax.stop_gradient(entropy_BT))

    w_BT = AGGREGATIONS[aggregation].token_weights(mask_BT)
    loss = jnp.sum(w_BT * loss_BT) / normalizer
    return loss, sums


@dataclasses.dataclass(frozen=True)
class PolicyLoss:
    """A registered policy loss: a log-ratio level and a token aggregation.

    Call: ``(logp_BT, old_logp_BT, ref_logp_BT, adv_B, mask_BT, normalizer, cfg,
    entropy_BT=None) -> (loss_contribution, metric_sums)``.
    """

    log_ratio_fn: Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
    aggregation: str  # key of AGGREGATIONS

    def __call__(
        self,
        logp_BT: jax.Array,
        old_logp_BT: jax.Array | None,
        ref_logp_BT: jax.Array | None,
        adv_B: jax.Array,
        mask_BT: jax.Array,
        normalizer: jax.Array,
        cfg: LossConfig,
        entropy_BT: jax.Array | None = None,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        return _clipped_policy_loss(
            logp_BT,
            old_logp_BT,
            ref_logp_BT,
            adv_B,
            mask_BT,
            normalizer,
            cfg,
            entropy_BT,
            log_ratio_fn=self.log_ratio_fn,
            aggregation=self.aggregation,
        )


POLICY_LOSSES: dict[str, PolicyLoss] = {
    "grpo": PolicyLoss(token_log_ratio, "sequence_mean"),
    "bnpo": PolicyLoss(token_log_ratio, "token_mean"),
    "dapo": PolicyLoss(token_log_ratio, "token_mean"),
    "dr_grpo": PolicyLoss(token_log_ratio, "token_sum_max_len"),
    "gspo": PolicyLoss(sequence_log_ratio, "sequence_mean"),
}


def get_policy_loss(name: str) -> PolicyLoss:
    """Looks up a policy loss by its config name (``rl.loss_type``)."""
    if name not in POLICY_LOSSES:
        raise ValueError(
            f"rl.loss_type: unknown loss {name!r}; choose one of {sorted(POLICY_LOSSES)}"
        )
    return POLICY_LOSSES[name]


def loss_normalizer(mask_BT: jax.Array, cfg: LossConfig) -> jax.Array:
    """The global normalizer Z of ``cfg.loss_type``; call it on the FULL batch's mask."""
    aggregation = AGGREGATIONS[get_policy_loss(cfg.loss_type).aggregation]
    return aggregation.normalizer(mask_BT, cfg.max_completion_len)


def policy_loss(
    logp_BT: jax.Array,
    old_logp_BT: jax.Array | None,
    ref_logp_BT: jax.Array | None,
    adv_B: jax.Array,
    mask_BT: jax.Array,
    normalizer: jax.Array,
    cfg: LossConfig,
    entropy_BT: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The loss named by ``cfg.loss_type``: ``(loss_contribution, metric_sums)``."""
    return get_policy_loss(cfg.loss_type)(
        logp_BT, old_logp_BT, ref_logp_BT, adv_B, mask_BT, normalizer, cfg, entropy_BT
    )


def finalize_metrics(metric_sums: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Token means from (micro-batch-summed) metric sums; drops the token count."""
    num_tokens = jnp.maximum(metric_sums[NUM_TOKENS], 1.0)
    return {k: v / num_tokens for k, v in metric_sums.items() if k != NUM_TOKENS}
