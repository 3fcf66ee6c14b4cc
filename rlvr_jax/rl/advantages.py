"""Advantage estimators: group-relative baselines over the G samples of each prompt.

Rows are group-major: rows ``p*G .. p*G+G-1`` are the G samples of prompt p, so
``rewards_R.reshape(B, G)`` gives one group per row. Every estimator is a pure function

    (rewards_R, group_size, eps) -> (adv_R, stats)

With ``r[p, i]`` the reward of sample i of prompt p,
``mean_p = 1/G sum_i r[p, i]`` and the *unbiased* (ddof = 1) standard deviation
``std_p = sqrt(1/(G-1) sum_i (r[p, i] - mean_p)^2)`` (the convention of TRL, whose
``torch.std`` is unbiased; TRL's default eps is 1e-4):

    grpo     A[p, i] = (r[p, i] - mean_p) / (std_p + eps)
    dr_grpo  A[p, i] =  r[p, i] - mean_p                          (Dr. GRPO: no std division)
    rloo     A[p, i] =  r[p, i] - 1/(G-1) sum_{j != i} r[p, j]  =  G/(G-1) (r[p, i] - mean_p)
    batch    A[p, i] = (r[p, i] - mean_p) / (std_R + eps)          (std_R: unbiased, all R rewards)

    reinforce_pp  A[p, i] = (r[p, i] - mean_R) / (std_R + eps)     (mean_R: all R rewards)

``batch`` keeps the group mean as baseline and only replaces the per-group scale by the
batch scale (TRL ``scale_rewards="batch"``, "Lite PPO"); it is REINFORCE++-baseline (Hu et
al., 2025), registered under that name too. ``reinforce_pp`` is REINFORCE++ itself: no
group baseline, the reward normalized over the global batch, so a group whose samples all
scored the same still moves (up if it beat the batch, down if not).

For the group-baseline estimators, a group whose rewards are all equal (``max == min``
exactly) carries no learning signal: its advantages are set to exactly 0 (``r - mean_p``
alone can be a rounding residue such as 1e-8, which ``/ eps`` would blow up). Every
estimator counts such groups in ``frac_zero_std``.

The rewards must be the *global* batch (all hosts), since ``batch`` uses a batch statistic;
under ``jit`` over a mesh that is automatic.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

AdvantageFn = Callable[[jax.Array, int, float], tuple[jax.Array, dict[str, jax.Array]]]


def _groups(rewards_R: jax.Array, group_size: int) -> jax.Array:
    """Returns rewards as float32 [B, G]; validates shapes (static, at trace time)."""
    if rewards_R.ndim != 1:
        raise ValueError(f"rewards must be 1-D [R], got shape {rewards_R.shape}")
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2 for group-relative advantages, got {group_size}")
    if rewards_R.shape[0] % group_size:
        raise ValueError(
            f"batch of {rewards_R.shape[0]} rewards is not a multiple of group_size {group_size}"
        )
    return rewards_R.astype(jnp.float32).reshape(-1, group_size)


def _unbiased_std(x: jax.Array, axis: int | None) -> jax.Array:
    return jnp.std(x, axis=axis, ddof=1, keepdims=axis is not None)


def _finish(
    adv_BG: jax.Array, r_BG: jax.Array, zero_constant_groups: bool = True
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Zeroes constant groups exactly (group baselines) and computes the statistics."""
    zero_std_B = jnp.max(r_BG, axis=1) == jnp.min(r_BG, axis=1)
    if zero_constant_groups:
        adv_BG = jnp.where(zero_std_B[:, None], 0.0, adv_BG)
    adv_R = adv_BG.reshape(-1)
    return adv_R, advantage_stats(adv_R, zero_std_B)


def advantage_stats(adv_R: jax.Array, zero_std_B: jax.Array) -> dict[str, jax.Array]:
    """Metrics: mean / population std / min / max of the advantages, and frac_zero_std.

    ``frac_zero_std`` is the fraction of groups (prompts) whose G rewards are all equal.
    """
    return {
        "advantage/mean": jnp.mean(adv_R),
        "advantage/std": jnp.std(adv_R),
        "advantage/min": jnp.min(adv_R),
        "advantage/max": jnp.max(adv_R),
        "frac_zero_std": jnp.mean(zero_std_B.astype(jnp.float32)),
    }


def grpo_advantages(
    rewards_R: jax.Array, group_size: int, eps: float
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """GRPO: ``(r - mean_p) / (std_p + eps)``, std unbiased (ddof = 1)."""
    r_BG = _groups(rewards_R, group_size)
    centered_BG = r_BG - jnp.mean(r_BG, axis=1, keepdims=True)
    return _finish(centered_BG / (_unbiased_std(r_BG, axis=1) + eps), r_BG)


def dr_grpo_advantages(
    rewards_R: jax.Array, group_size: int, eps: float
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Dr. GRPO: ``r - mean_p`` (``eps`` unused)."""
    del eps
    r_BG = _groups(rewards_R, group_size)
    return _finish(r_BG - jnp.mean(r_BG, axis=1, keepdims=True), r_BG)


def rloo_advantages(
    rewards_R: jax.Array, group_size: int, eps: float
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """RLOO: ``r_i`` minus the mean of the other G-1 rewards of its group (``eps`` unused)."""
    del eps
    r_BG = _groups(rewards_R, group_size)
    leave_one_out_BG = (jnp.sum(r_BG, axis=1, keepdims=True) - r_BG) / (group_size - 1)
    return _finish(r_BG - leave_one_out_BG, r_BG)


def batch_advantages(
    rewards_R: jax.Array, group_size: int, eps: float
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Group mean baseline, batch scale: ``(r - mean_p) / (std_R + eps)``, std unbiased."""
    r_BG = _groups(rewards_R, group_size)
    centered_BG = r_BG - jnp.mean(r_BG, axis=1, keepdims=True)
    return _finish(centered_BG / (_unbiased_std(r_BG, axis=None) + eps), r_BG)


def reinforce_pp_advantages(
    rewards_R: jax.Array, group_size: int, eps: float
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """REINFORCE++: ``(r - mean_R) / (std_R + eps)`` over the global batch, std unbiased."""
    r_BG = _groups(rewards_R, group_size)
    centered_BG = r_BG - jnp.mean(r_BG)
    return _finish(centered_BG / (_unbiased_std(r_BG, axis=None) + eps), r_BG, False)


ADVANTAGE_ESTIMATORS: dict[str, AdvantageFn] = {
    "grpo": grpo_advantages,
    "dr_grpo": dr_grpo_advantages,
    "rloo": rloo_advantages,
    "batch": batch_advantages,
    "reinforce_pp": reinforce_pp_advantages,
    "reinforce_pp_baseline": batch_advantages,  # the same estimator as "batch"
}


def get_advantage_estimator(name: str) -> AdvantageFn:
    """Looks up an estimator by its config name (``rl.advantage``)."""
    if name not in ADVANTAGE_ESTIMATORS:
        choices = sorted(ADVANTAGE_ESTIMATORS)
        raise ValueError(f"rl.advantage: unknown estimator {name!r}; choose one of {choices}")
    return ADVANTAGE_ESTIMATORS[name]
