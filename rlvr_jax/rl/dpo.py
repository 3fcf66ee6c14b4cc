"""Online DPO from verified pairs: which samples pair up, and the preference losses.

Online DPO (Guo et al., 2024, "Direct Language Model Alignment from Online AI Feedback")
with the verifier as the judge: of the G samples of a prompt, *chosen* is one the
verifier accepts and *rejected* one it rejects. ``select_pairs`` makes up to ``k`` pairs
per prompt, deterministically: the accepted samples sorted by total reward (highest
first), the rejected ones by total reward (lowest first), ties by sample index, and pair
j joins the j-th of each. A prompt with no accepted or no rejected sample (all correct,
all wrong: a tie) gives no pair and is counted as skipped. Unused pair slots keep the
shape static (they point at the group's first row and carry ``valid = 0``).

With sequence log-probabilities (sums over completion tokens) under the policy ``pi``
and the reference ``ref`` (the base, LoRA absent), and
``h = (log pi(y_c) - log ref(y_c)) - (log pi(y_r) - log ref(y_r))``:

    sigmoid  l = -log sigmoid(beta h)              DPO (Rafailov et al., 2023)
    ipo      l = (h - 1 / (2 beta))^2               IPO (Azar et al., 2023; summed log-ratios,
                                                    as in the paper; TRL averages per token)

Metrics (means over valid pairs): ``dpo/reward_chosen = beta (log pi - log ref)(y_c)``,
``dpo/reward_rejected`` likewise, ``dpo/margin`` their difference, ``dpo/accuracy`` the
fraction with ``h > 0``; ``dpo/pairs`` and ``dpo/skipped`` count pairs and skipped prompts.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

DPO_LOSSES = ("sigmoid", "ipo")


@dataclasses.dataclass(frozen=True)
class DPOConfig:
    """Online DPO (`config.rl.dpo`); its beta is `rl.beta` (the KL strength to the reference)."""

    loss: str  # 'sigmoid' (DPO) | 'ipo'
    pairs_per_prompt: int  # k: at most this many (chosen, rejected) pairs per prompt

    def __post_init__(self):
        if self.loss not in DPO_LOSSES:
            raise ValueError(f"rl.dpo.loss: unknown loss {self.loss!r}; choose one of {DPO_LOSSES}")
        if self.pairs_per_prompt < 1:
            raise ValueError(f"rl.dpo.pairs_per_prompt must be >= 1, got {self.pairs_per_prompt}")


@dataclasses.dataclass(frozen=True)
class Pairs:
    """Row indices into the rollout's R rows, ``[B * k]`` each (group-major: prompt p's
    pairs are slots p*k .. p*k+k-1)."""

    chosen: np.ndarray  # int
    rejected: np.ndarray  # int
    valid: np.ndarray  # bool
    skipped: int  # prompts without both an accepted and a rejected sample


def select_pairs(
    correct_R: np.ndarray, rewards_R: np.ndarray, group_size: int, pairs_per_prompt: int
) -> Pairs:
    """Pairs of (accepted, rejected) samples per prompt, as the module docstring orders them."""
    correct_BG = np.asarray(correct_R, bool).reshape(-1, group_size)
    rewards_BG = np.asarray(rewards_R, np.float64).reshape(-1, group_size)
    B, k = correct_BG.shape[0], pairs_per_prompt
    chosen = np.repeat(np.arange(B) * group_size, k)
    rejected = chosen.copy()
    valid = np.zeros(B * k, bool)
    skipped = 0
    for p in range(B):
        samples = np.arange(group_size)
        accepted = samples[correct_BG[p]]
        refused = samples[~correct_BG[p]]
        # np.lexsort sorts by its last key first: reward, then sample index.
        accepted = accepted[np.lexsort((accepted, -rewards_BG[p, accepted]))]
        refused = refused[np.lexsort((refused, rewards_BG[p, refused]))]
        n = min(len(accepted), len(refused), k)
        if n == 0:
            skipped += 1
        slots = slice(p * k, p * k + n)
        chosen[slots] = p * group_size + accepted[:n]
        rejected[slots] = p * group_size + refused[:n]
        valid[slots] = True
    return Pairs(chosen=chosen, rejected=rejected, valid=valid, skipped=skipped)


def preference_loss(
    policy_chosen_C: jax.Array,
    policy_rejected_C: jax.Array,
    ref_chosen_C: jax.Array,
    ref_rejected_C: jax.Array,
    beta: float,
    loss: str,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """``(loss_C, per-pair metric values)`` from sequence log-probabilities ``[C]``."""
    chosen_C = policy_chosen_C - ref_chosen_C
    rejected_C = policy_rejected_C - ref_rejected_C
    h_C = chosen_C - rejected_C
    if loss == "sigmoid":
        loss_C = -jax.nn.log_sigmoid(beta * h_C)
    elif loss == "ipo":
        loss_C = jnp.square(h_C - 1.0 / (2.0 * beta))
    else:
        raise ValueError(f"rl.dpo.loss: unknown loss {loss!r}; choose one of {DPO_LOSSES}")
    stats = {
        "dpo/reward_chosen": beta * chosen_C,
        "dpo/reward_rejected": beta * rejected_C,
        "dpo/margin": beta * h_C,
        "dpo/accuracy": (h_C > 0).astype(jnp.float32),
    }
    return loss_C, jax.tree.map(jax.lax.stop_gradient, stats)
