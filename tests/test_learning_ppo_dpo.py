"""PPO and online DPO learn the toy task of test_learning_toy.py (chance -> learned).

The loops are the algorithms' own programs (rl/ppo.py, rl/dpo_step.py) on the KV-cache
sampler's completions, as rl/algorithm.py wires them for the training loop.
"""

import numpy as np
import pytest
from tiny_rl import LORA, fast_compile, loss_config, optim_config, tiny_model
from toy_task import (
    GROUP,
    NO_STOPS,
    PROMPTS,
    SAMPLING,
    chance_token,
    decisive_params,
    final_reward,
    one_device_mesh,
    rewards_of,
)

from rlvr_jax.optim import make_optimizer, make_schedule
from rlvr_jax.policy import Policy
from rlvr_jax.rl.dpo import DPOConfig, select_pairs
from rlvr_jax.rl.dpo_step import make_dpo_train_step, make_pair_batch, make_pair_scorer
from rlvr_jax.rl.ppo import (
    PPOConfig,
    init_critic,
    make_ppo_batch,
    make_ppo_scorer,
    make_ppo_train_step,
)
from rlvr_jax.rl.train_state import init_train_state, step_rng
from rlvr_jax.rl.train_step import TrainStepConfig
from rlvr_jax.rng_streams import ROLLOUT

STEPS = 30


@pytest.fixture(autouse=True, scope="module")
def _fast_compile():
    with fast_compile():
        yield


def toy():
    model, _ = tiny_model()
    params = decisive_params()
    target, p0 = chance_token(model, params)
    assert p0 < 0.05
    return model, params, target


def sample(policy, state):
    return policy.sample(state.trainable, PROMPTS, step_rng(state, ROLLOUT), SAMPLING, NO_STOPS)


@pytest.mark.parametrize("critic", ["shared", "separate"])
def test_ppo_learns_and_its_value_loss_falls(critic):
    import jax

    model, params, target = toy()
    mesh = one_device_mesh()
    policy = Policy.create(model, params, "lora", LORA, mesh, has_reference=False)
    cfg = PPOConfig(
        critic=critic,
        gamma=1.0,
        gae_lambda=1.0,
        value_coef=0.5,
        value_clip=None,
        critic_learning_rate=0.05,
        critic_warmup_steps=0,
        whiten_advantages=True,
        kl_penalty="reward",
    )
    optim = optim_config(learning_rate=0.05)
    optimizer, critic_optimizer = make_optimizer(optim), make_optimizer(optim)
    state = init_train_state(
        policy.init_trainable(jax.random.key(1)),
        optimizer,
        jax.random.key(0),
        mesh,
        init_critic(policy, cfg, jax.random.key(2)),
        critic_optimizer,
    )
    step_cfg = TrainStepConfig(num_microbatches=2, num_iterations=1, group_size=GROUP)
    scorer = make_ppo_scorer(policy, cfg, 0.0, "k3", step_cfg, state)
    step = make_ppo_train_step(
        policy,
        cfg,
        loss_config("dapo"),
        step_cfg,
        optimizer,
        critic_optimizer,
        make_schedule(optim),
        state,
    )
    mean_rewards, value_losses = [], []
    for _ in range(STEPS):
        completions = sample(policy, state)
        rewards = rewards_of(completions, target)
        mean_rewards.append(float(rewards.mean()))
        batch, _ = scorer(state, make_ppo_batch(completions, rewards, mesh))
        state, metrics = step(state, batch)
        value_losses.append(float(metrics["value/loss"]))
        assert float(metrics["ppo/policy_updated"]) == 1.0

    final = final_reward(policy, state, target)
    history = " ".join(f"{r:.2f}" for r in mean_rewards)
    losses = " ".join(f"{v:.3f}" for v in value_losses)
    assert np.mean(mean_rewards[:3]) < 0.2, f"not at chance at the start: {history}"
    assert final >= 0.9, f"final mean reward {final:.3f}; per step: {history}"
    # The returns' variance peaks while the policy is half-way; the critic then tracks
    # them: the last steps' value loss is far below the worst.
    assert np.mean(value_losses[-3:]) < 0.25 * max(value_losses), f"value loss: {losses}"


def test_dpo_learns_from_verified_pairs():
    import jax

    model, params, target = toy()
    mesh = one_device_mesh()
    policy = Policy.create(model, params, "lora", LORA, mesh, has_reference=True)
    # On this toy, beta 0.1 (k = 4) or k = 2 stall with 1-2 prompts never paired (groups all
    # wrong give no pair, BUILD_NOTES: online DPO); beta 0.5 with k = 4 learns all four.
    cfg, beta = DPOConfig(loss="sigmoid", pairs_per_prompt=4), 0.5
    optim = optim_config(learning_rate=0.05)
    optimizer = make_optimizer(optim)
    state = init_train_state(
        policy.init_trainable(jax.random.key(1)), optimizer, jax.random.key(0), mesh
    )
    scorer = make_pair_scorer(policy, num_microbatches=2)
    step = make_dpo_train_step(policy, cfg, beta, 2, optimizer, make_schedule(optim), state)
    mean_rewards, num_pairs = [], []
    for _ in range(STEPS):
        completions = sample(policy, state)
        rewards = rewards_of(completions, target)
        mean_rewards.append(float(rewards.mean()))
        pairs = select_pairs(rewards > 0, rewards, GROUP, cfg.pairs_per_prompt)
        before = jax.device_get(state.trainable)  # the step donates the state
        batch = scorer(state, make_pair_batch(completions, pairs, mesh))
        state, metrics = step(state, batch)
        num_pairs.append(int(metrics["dpo/pairs"]))
        assert num_pairs[-1] == int(pairs.valid.sum())
        if num_pairs[-1] == 0:  # nothing to learn from: the update is skipped exactly
            jax.tree.map(np.testing.assert_array_equal, state.trainable, before)

    final = final_reward(policy, state, target)
    history = " ".join(f"{r:.2f}/{n}" for r, n in zip(mean_rewards, num_pairs, strict=True))
    assert np.mean(mean_rewards[:3]) < 0.2, f"not at chance at the start: {history}"
    assert final >= 0.9, f"final mean reward {final:.3f}; reward/pairs per step: {history}"
