"""The RL algorithm of a run (``rl.algorithm``), as two functions the loop calls per step.

    algo = make_algorithm(exp, policy, optimizer, schedule, state)
    batch, metrics = algo.prepare(rollout, state)      # once per rollout: host -> mesh, scoring
    for _ in range(exp.rl.num_iterations):
        state, metrics = algo.update(state, batch)      # one jitted optimizer update

    algorithm  batch rows              prepare adds                      update
    grpo       R = B * G completions   group advantages (rl.advantage),  clipped surrogate of
                                       old / ref logprobs               rl.loss_type + beta KL
    ppo        R = B * G completions   V_old, GAE advantages, returns,   surrogate + value loss;
                                       old / ref logprobs               the critic trains too
    dpo        C = B * k pairs         verified pairs, ref logprobs     preference loss

Keys each reads: all read ``rl.beta`` (grpo/ppo: the KL coefficient; dpo: DPO's beta, the
same KL strength of the implied objective), ``rl.num_iterations``, ``rl.num_microbatches``;
grpo and ppo read ``rl.loss_type``, ``rl.eps_*``, ``rl.dual_clip``, ``rl.kl_estimator``;
grpo alone ``rl.advantage`` and ``rl.advantage_eps``; ppo ``rl.ppo.*``; dpo ``rl.dpo.*``.

``init_state`` builds the step-0 train state of any algorithm (the critic for ppo); the
loop and scripts/eval.py (which restores checkpoints into it) both use it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax

from rlvr_jax import rng_streams
from rlvr_jax.config import ExperimentConfig
from rlvr_jax.multihost import gather_rows
from rlvr_jax.optim import make_optimizer
from rlvr_jax.policy import Policy
from rlvr_jax.rl.dpo import select_pairs
from rlvr_jax.rl.dpo_step import make_dpo_train_step, make_pair_batch, make_pair_scorer
from rlvr_jax.rl.ppo import init_critic, make_ppo_batch, make_ppo_scorer, make_ppo_train_step
from rlvr_jax.rl.train_batch import make_train_batch
from rlvr_jax.rl.train_state import TrainState, init_train_state
from rlvr_jax.rl.train_step import make_rollout_scorer, make_train_step
from rlvr_jax.rollout import Rollout

Batch = dict[str, jax.Array]
Metrics = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Algorithm:
    name: str
    prepare: Callable[[Rollout, TrainState], tuple[Batch, Metrics]]
    update: Callable[[TrainState, Batch], tuple[TrainState, Metrics]]


def critic_optimizer(exp: ExperimentConfig) -> optax.GradientTransformation:
    """``optim.*`` with the critic's learning rate (``rl.ppo.critic_learning_rate``)."""
    return make_optimizer(
        dataclasses.replace(exp.optim, learning_rate=exp.rl.ppo.critic_learning_rate)
    )


def init_state(
    exp: ExperimentConfig,
    policy: Policy,
    root_rng: jax.Array,
    optimizer: optax.GradientTransformation,
) -> TrainState:
    """The step-0 train state: the policy's trainable tree, and PPO's critic."""
    trainable = policy.init_trainable(rng_streams.stream_key(root_rng, rng_streams.LORA_INIT))
    if exp.rl.algorithm != "ppo":
        return init_train_state(trainable, optimizer, root_rng, policy.mesh)
    critic = init_critic(
        policy, exp.rl.ppo, rng_streams.stream_key(root_rng, rng_streams.CRITIC_INIT)
    )
    return init_train_state(
        trainable, optimizer, root_rng, policy.mesh, critic, critic_optimizer(exp)
    )


def _grpo(exp, policy, optimizer, schedule, state) -> Algorithm:
    loss_cfg, step_cfg = exp.loss_config(), exp.train_step_config()
    scorer = make_rollout_scorer(policy, loss_cfg, step_cfg, state)

    def prepare(out: Rollout, state: TrainState) -> tuple[Batch, Metrics]:
        batch, metrics = make_train_batch(
            out.completions,
            out.scores.total,
            policy.mesh,
            out.group_size,
            exp.rl.advantage,
            exp.rl.advantage_eps,
        )
        return scorer(state, batch), metrics

    step = make_train_step(policy, loss_cfg, step_cfg, optimizer, schedule, state)
    return Algorithm("grpo", prepare, step)


def _ppo(exp, policy, optimizer, schedule, state) -> Algorithm:
    rl, step_cfg = exp.rl, exp.train_step_config()
    scorer = make_ppo_scorer(policy, rl.ppo, rl.beta, rl.kl_estimator, step_cfg, state)

    def prepare(out: Rollout, state: TrainState) -> tuple[Batch, Metrics]:
        return scorer(state, make_ppo_batch(out.completions, out.scores.total, policy.mesh))

    step = make_ppo_train_step(
        policy,
        rl.ppo,
        exp.loss_config(),
        step_cfg,
        optimizer,
        critic_optimizer(exp),
        schedule,
        state,
    )
    return Algorithm("ppo", prepare, step)


def _dpo(exp, policy, optimizer, schedule, state) -> Algorithm:
    rl = exp.rl
    scorer = make_pair_scorer(policy, rl.num_microbatches)

    def prepare(out: Rollout, state: TrainState) -> tuple[Batch, Metrics]:
        scores = out.scores
        pairs = select_pairs(scores.correct, scores.total, out.group_size, rl.dpo.pairs_per_prompt)
        skipped = float(np.sum(gather_rows(np.array([pairs.skipped], np.float32))))
        batch = make_pair_batch(out.completions, pairs, policy.mesh)
        return scorer(state, batch), {
            "dpo/skipped": skipped,
            "dpo/skipped_frac": skipped / rl.prompts_per_step,
        }

    step = make_dpo_train_step(
        policy, rl.dpo, rl.beta, rl.num_microbatches, optimizer, schedule, state, rl.remat
    )
    return Algorithm("dpo", prepare, step)


_BUILDERS = {"grpo": _grpo, "ppo": _ppo, "dpo": _dpo}


def make_algorithm(
    exp: ExperimentConfig,
    policy: Policy,
    optimizer: optax.GradientTransformation,
    schedule: optax.Schedule,
    state: TrainState,
) -> Algorithm:
    """The jitted programs of ``exp.rl.algorithm`` (``state`` gives their shardings)."""
    return _BUILDERS[exp.rl.algorithm](exp, policy, optimizer, schedule, state)
