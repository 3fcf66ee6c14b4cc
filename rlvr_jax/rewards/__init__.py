"""Verifiable rewards: answer extraction, verifiers, shaping rewards, and their combiner.

Importing this package registers every built-in reward in `REWARDS`:
answer_match, math_equivalence, format_exact, format_approx, countdown_equation,
length_penalty, overlong_penalty. The verifiers among them (answer_match,
countdown_equation, math_equivalence) also register a `Verifier`: see `get_verifier`.
"""

from rlvr_jax.rewards import (  # noqa: F401  (imported to register the rewards)
    answer_match,
    countdown,
    format,
    length,
    math_equivalence,
)
from rlvr_jax.rewards.answer_match import answers_equal
from rlvr_jax.rewards.combine import (
    RewardOutput,
    RewardSet,
    build_rewards,
    rows_to_fields,
    score_completions,
)
from rlvr_jax.rewards.config import RewardsConfig, RewardSpec
from rlvr_jax.rewards.diagnostics import reward_metrics
from rlvr_jax.rewards.extraction import answer_span, check_mode, extract_answer
from rlvr_jax.rewards.numbers import normalize_number
from rlvr_jax.rewards.registry import (
    REWARDS,
    RewardError,
    Verifier,
    get_verifier,
    register_reward,
)

__all__ = [
    "REWARDS",
    "RewardError",
    "RewardOutput",
    "RewardSet",
    "RewardSpec",
    "RewardsConfig",
    "Verifier",
    "answer_span",
    "answers_equal",
    "build_rewards",
    "check_mode",
    "extract_answer",
    "get_verifier",
    "normalize_number",
    "register_reward",
    "reward_metrics",
    "rows_to_fields",
    "score_completions",
]
