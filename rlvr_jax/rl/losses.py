"""Policy losses: the clipped surrogate, its ratio levels and aggregations, plus the KL term.

Inputs per (micro-)batch, all float [R, L] unless noted (cast to float32 inside):
``logp_RL`` sampled-token logprobs under the policy being trained (differentiable);
``old_logp_RL`` the same under the policy that sampled (``None`` = on-policy, mu = 1: taken
as ``stop_gradient(logp_RL)``, so the ratio is exactly 1); ``ref_logp_RL`` under the frozen
reference (``None`` when ``beta == 0``: the reference forward is skipped); ``adv_R`` [R];
``mask_RL`` 1 on completion tokens; ``normalizer`` the scalar Z of the aggregation computed
over the full batch by :func:`loss_normalizer`; optional ``entropy_RL`` (metric only).
``adv_R`` may also be per token, ``[R, L]`` (PPO's GAE advantages).

Per token, with ratio ``r = exp(log_ratio)`` and ``A = adv_R[i]``:

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
``dr_grpo`` (token ratio, token_sum_max_len), ``gspo`` (sequence ratio, sequence_mean),
``cispo`` (token ratio, token_mean, the CISPO surrogate below instead of the PPO clip):

    l = -sg(min(r, 1 + eps_high)) * A * logp                           CISPO (MiniMax-M1)

Optional ``is_weights_RL`` (off_policy.py: truncated / masked importance weights between
the sampler's distribution and the trainer's) multiply the per-token loss, stop-gradient.

Each loss returns ``(loss_contribution, metric_sums)``. Both are additive over micro-batches:
the loss because Z is global, the metrics because they are masked token *sums*;
:func:`finalize_metrics` divides the summed metrics by the summed token count once.
Metric definitions (token fractions over completion tokens):

    policy/clip_frac_low   r < 1 - eps_low  and A < 0   (lower clip active, gradient zero)
    policy/clip_frac_high  r > 1 + eps_high and A > 0   (upper clip active, gradient zero)
    policy/dual_clip_frac  r > c and A < 0              (dual clip active; 0 when disabled)
    policy/ratio_mean      mean r
    kl/mean                mean kl estimate (when ref_logp is given, even if beta = 0)
    policy/entropy         mean entropy (when entropy_RL is given)
    policy/entropy_top20   mean entropy of the 20% highest-entropy tokens (top_entropy_sums)
    (cispo: clip_frac_high = r > 1 + eps_high whatever the sign of A; clip_frac_low = 0)
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

from rlvr_jax.rl.aggregation import AGGREGATIONS
from rlvr_jax.rl.kl import KL_ESTIMATORS, get_kl_estimator

NUM_TOKENS = "num_tokens"
TOP_ENTROPY_FRACTION = 0.2
TOP_ENTROPY_SUM, TOP_ENTROPY_COUNT = "entropy_top20_sum", "entropy_top20_count"


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
        if self.dual_clip is not None and POLICY_LOSSES[self.loss_type].surrogate == "cispo":
            raise ValueError(
                "rl.dual_clip: the dual clip bounds the PPO clip; rl.loss_type = "
                f"{self.loss_type!r} has none (set rl.dual_clip = None)"
            )
        if not self.beta >= 0.0:
            raise ValueError(f"rl.beta must be >= 0, got {self.beta}")
        if self.kl_estimator not in KL_ESTIMATORS:
            raise ValueError(
                f"rl.kl_estimator: unknown estimator {self.kl_estimator!r}; "
                f"choose one of {sorted(KL_ESTIMATORS)}"
            )
        if self.max_completion_len < 1:
            raise ValueError(f"rl.max_completion_len must be >= 1, got {self.max_completion_len}")


def token_log_ratio(logp_RL: jax.Array, old_logp_RL: jax.Array, mask_RL: jax.Array) -> jax.Array:
    """Per-token log importance ratio ``logp - old_logp`` (0 off the mask)."""
    return jnp.where(mask_RL > 0, logp_RL - old_logp_RL, 0.0)


def sequence_log_ratio(logp_RL: jax.Array, old_logp_RL: jax.Array, mask_RL: jax.Array) -> jax.Array:
    """GSPO-token log ratio ``sg(log s_i) + logp - sg(logp)`` (0 off the mask)."""
    m_RL = mask_RL.astype(jnp.float32)
    diff_RL = jnp.where(mask_RL > 0, logp_RL - old_logp_RL, 0.0)
    log_s_R = jnp.sum(diff_RL * m_RL, axis=1) / jnp.maximum(jnp.sum(m_RL, axis=1), 1.0)
    log_s_RL = jax.lax.stop_gradient(log_s_R)[:, None] + logp_RL - jax.lax.stop_gradient(logp_RL)
    return jnp.where(mask_RL > 0, log_s_RL, 0.0)


def per_token(adv: jax.Array) -> jax.Array:
    """Advantages broadcastable against ``[R, L]``: ``[R] -> [R, 1]``, ``[R, L]`` as is."""
    return adv if adv.ndim == 2 else adv[:, None]


def clipped_surrogate(
    ratio_RL: jax.Array,
    adv_R: jax.Array,
    eps_low: float,
    eps_high: float,
    dual_clip: float | None,
) -> jax.Array:
    """Per-token clipped surrogate loss (to minimize), with the optional dual clip.

    ``adv_R`` is per sequence ``[R]`` or per token ``[R, L]``.
    """
    adv_R1 = per_token(adv_R)
    unclipped_RL = -adv_R1 * ratio_RL
    clipped_RL = -adv_R1 * jnp.clip(ratio_RL, 1.0 - eps_low, 1.0 + eps_high)
    loss_RL = jnp.maximum(unclipped_RL, clipped_RL)
    if dual_clip is not None:
        loss_RL = jnp.where(adv_R1 < 0, jnp.minimum(loss_RL, -dual_clip * adv_R1), loss_RL)
    return loss_RL


def cispo_surrogate(
    logp_RL: jax.Array, ratio_RL: jax.Array, adv_R: jax.Array, eps_high: float
) -> jax.Array:
    """CISPO (MiniMax-M1, 2025): REINFORCE on every token, weighted by the clipped,
    stop-gradient importance ratio: ``l = -sg(min(r, 1 + eps_high)) A logp``. No token's
    gradient is ever zeroed by the clip (PPO drops the clipped tokens' gradients)."""
    weight_RL = jax.lax.stop_gradient(jnp.minimum(ratio_RL, 1.0 + eps_high))
    return -weight_RL * per_token(adv_R) * logp_RL


def _clipped_policy_loss(
    logp_RL: jax.Array,
    old_logp_RL: jax.Array | None,
    ref_logp_RL: jax.Array | None,
    adv_R: jax.Array,
    mask_RL: jax.Array,
    normalizer: jax.Array,
    cfg: LossConfig,
    entropy_RL: jax.Array | None,
    is_weights_RL: jax.Array | None,
    *,
    log_ratio_fn: Callable[[jax.Array, jax.Array, jax.Array], jax.Array],
    aggregation: str,
    surrogate: str,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    logp_RL = logp_RL.astype(jnp.float32)
    adv_R = adv_R.astype(jnp.float32)
    if old_logp_RL is None:
        old_logp_RL = jax.lax.stop_gradient(logp_RL)
    ratio_RL = jnp.exp(log_ratio_fn(logp_RL, old_logp_RL.astype(jnp.float32), mask_RL))
    if surrogate == "cispo":
        loss_RL = cispo_surrogate(logp_RL, ratio_RL, adv_R, cfg.eps_high)
    else:
        loss_RL = clipped_surrogate(ratio_RL, adv_R, cfg.eps_low, cfg.eps_high, cfg.dual_clip)
    if is_weights_RL is not None:  # off-policy correction (off_policy.py), fixed per rollout
        loss_RL = jax.lax.stop_gradient(is_weights_RL.astype(jnp.float32)) * loss_RL

    m_RL = mask_RL.astype(jnp.float32)
    adv_R1 = per_token(adv_R)
    if surrogate == "cispo":  # the weight is clipped whatever the advantage's sign
        clipped_low = jnp.zeros_like(m_RL, dtype=bool)
        clipped_high = ratio_RL > 1.0 + cfg.eps_high
    else:  # the clip is active (zero gradient) only on the side the advantage pushes
        clipped_low = (ratio_RL < 1.0 - cfg.eps_low) & (adv_R1 < 0)
        clipped_high = (ratio_RL > 1.0 + cfg.eps_high) & (adv_R1 > 0)
    sums = {
        NUM_TOKENS: jnp.sum(m_RL),
        "policy/clip_frac_low": jnp.sum(m_RL * clipped_low),
        "policy/clip_frac_high": jnp.sum(m_RL * clipped_high),
        "policy/dual_clip_frac": (
            jnp.zeros(())
            if cfg.dual_clip is None
            else jnp.sum(m_RL * ((ratio_RL > cfg.dual_clip) & (adv_R1 < 0)))
        ),
        "policy/ratio_mean": jnp.sum(m_RL * jax.lax.stop_gradient(ratio_RL)),
    }

    if ref_logp_RL is not None:
        diff_mask_RL = mask_RL > 0
        ref_RL = jnp.where(diff_mask_RL, ref_logp_RL.astype(jnp.float32), 0.0)
        kl_RL = get_kl_estimator(cfg.kl_estimator)(jnp.where(diff_mask_RL, logp_RL, 0.0), ref_RL)
        sums["kl/mean"] = jnp.sum(m_RL * jax.lax.stop_gradient(kl_RL))
        if cfg.beta > 0:
            loss_RL = loss_RL + cfg.beta * kl_RL
    elif cfg.beta > 0:
        raise ValueError(f"rl.beta = {cfg.beta} > 0 needs the reference logprobs (ref_logp_RL)")
    if entropy_RL is not None:
        entropy_RL = jax.lax.stop_gradient(entropy_RL)
        sums["policy/entropy"] = jnp.sum(m_RL * entropy_RL)
        sums |= top_entropy_sums(entropy_RL, mask_RL)

    w_RL = AGGREGATIONS[aggregation].token_weights(mask_RL)
    loss = jnp.sum(w_RL * loss_RL) / normalizer
    return loss, sums


@dataclasses.dataclass(frozen=True)
class PolicyLoss:
    """A registered policy loss: a log-ratio level, a token aggregation and a surrogate.

    Call: ``(logp_RL, old_logp_RL, ref_logp_RL, adv_R, mask_RL, normalizer, cfg,
    entropy_RL=None, is_weights_RL=None) -> (loss_contribution, metric_sums)``.
    """

    log_ratio_fn: Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
    aggregation: str  # key of AGGREGATIONS
    surrogate: str = "clip"  # 'clip' (PPO) | 'cispo'

    def __call__(
        self,
        logp_RL: jax.Array,
        old_logp_RL: jax.Array | None,
        ref_logp_RL: jax.Array | None,
        adv_R: jax.Array,
        mask_RL: jax.Array,
        normalizer: jax.Array,
        cfg: LossConfig,
        entropy_RL: jax.Array | None = None,
        is_weights_RL: jax.Array | None = None,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        return _clipped_policy_loss(
            logp_RL,
            old_logp_RL,
            ref_logp_RL,
            adv_R,
            mask_RL,
            normalizer,
            cfg,
            entropy_RL,
            is_weights_RL,
            log_ratio_fn=self.log_ratio_fn,
            aggregation=self.aggregation,
            surrogate=self.surrogate,
        )


POLICY_LOSSES: dict[str, PolicyLoss] = {
    "grpo": PolicyLoss(token_log_ratio, "sequence_mean"),
    "bnpo": PolicyLoss(token_log_ratio, "token_mean"),
    "dapo": PolicyLoss(token_log_ratio, "token_mean"),
    "dr_grpo": PolicyLoss(token_log_ratio, "token_sum_max_len"),
    "gspo": PolicyLoss(sequence_log_ratio, "sequence_mean"),
    "cispo": PolicyLoss(token_log_ratio, "token_mean", surrogate="cispo"),
}


def get_policy_loss(name: str) -> PolicyLoss:
    """Looks up a policy loss by its config name (``rl.loss_type``)."""
    if name not in POLICY_LOSSES:
        raise ValueError(
            f"rl.loss_type: unknown loss {name!r}; choose one of {sorted(POLICY_LOSSES)}"
        )
    return POLICY_LOSSES[name]


def loss_normalizer(mask_RL: jax.Array, cfg: LossConfig) -> jax.Array:
    """The global normalizer Z of ``cfg.loss_type``; call it on the FULL batch's mask."""
    aggregation = AGGREGATIONS[get_policy_loss(cfg.loss_type).aggregation]
    return aggregation.normalizer(mask_RL, cfg.max_completion_len)


def policy_loss(
    logp_RL: jax.Array,
    old_logp_RL: jax.Array | None,
    ref_logp_RL: jax.Array | None,
    adv_R: jax.Array,
    mask_RL: jax.Array,
    normalizer: jax.Array,
    cfg: LossConfig,
    entropy_RL: jax.Array | None = None,
    is_weights_RL: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The loss named by ``cfg.loss_type``: ``(loss_contribution, metric_sums)``."""
    return get_policy_loss(cfg.loss_type)(
        logp_RL,
        old_logp_RL,
        ref_logp_RL,
        adv_R,
        mask_RL,
        normalizer,
        cfg,
        entropy_RL,
        is_weights_RL,
    )


def top_entropy_sums(entropy_RL: jax.Array, mask_RL: jax.Array) -> dict[str, jax.Array]:
    """Sum and count of the entropies of the top ``TOP_ENTROPY_FRACTION`` of this
    (micro-)batch's completion tokens by entropy (the "forking tokens" of Wang et al., 2025,
    whose entropy collapses first). Over micro-batches the sums add: the metric is the mean
    over each micro-batch's top 20%, exact for rl.num_microbatches = 1."""
    valid = (mask_RL > 0).reshape(-1)
    flat = jnp.where(valid, entropy_RL.reshape(-1), -jnp.inf)
    k = jnp.maximum(jnp.ceil(TOP_ENTROPY_FRACTION * jnp.sum(valid)), 1.0).astype(jnp.int32)
    threshold = jnp.sort(flat)[::-1][k - 1]
    chosen = valid & (flat >= threshold)
    return {
        TOP_ENTROPY_SUM: jnp.sum(jnp.where(chosen, flat, 0.0)),
        TOP_ENTROPY_COUNT: jnp.sum(chosen.astype(jnp.float32)),
    }


def finalize_metrics(metric_sums: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Token means from (micro-batch-summed) metric sums; drops the token count.
    ``policy/entropy_top20`` is the mean over its own tokens (``top_entropy_sums``)."""
    num_tokens = jnp.maximum(metric_sums[NUM_TOKENS], 1.0)
    counts = (NUM_TOKENS, TOP_ENTROPY_SUM, TOP_ENTROPY_COUNT)
    out = {k: v / num_tokens for k, v in metric_sums.items() if k not in counts}
    if TOP_ENTROPY_SUM in metric_sums:
        top_count = jnp.maximum(metric_sums[TOP_ENTROPY_COUNT], 1.0)
        out["policy/entropy_top20"] = metric_sums[TOP_ENTROPY_SUM] / top_count
    return out
