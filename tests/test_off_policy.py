"""Off-policy correction: importance weights against the distribution the sampler drew from.

The sampler's log-probabilities are those of its tempered, top-p-truncated, renormalized
distribution. The weight that is right compares them with the trainer's probability under
the same transform (1 on-policy); the naive one compares them with the trainer's
untruncated distribution and is off by the kept mass (TRL issue 6789).
"""

import dataclasses

import jax
import numpy as np
import pytest
from tiny_rl import LORA, fast_compile, loss_config, optim_config, tiny_model
from toy_task import GROUP, NO_STOPS, PROMPTS, SAMPLING, decisive_params, one_device_mesh

from rlvr_jax.models.decoder import Decoder
from rlvr_jax.optim import make_optimizer, make_schedule
from rlvr_jax.policy import Policy
from rlvr_jax.rl.logprobs import token_logprobs_and_entropy
from rlvr_jax.rl.off_policy import (
    OffPolicyConfig,
    importance_weights,
    off_policy_metrics,
    token_log_ratios,
)
from rlvr_jax.rl.policy_logprobs import completion_hidden
from rlvr_jax.rl.train_batch import make_train_batch
from rlvr_jax.rl.train_state import init_train_state
from rlvr_jax.rl.train_step import (
    INPUT_KEYS,
    IS_LOG_RATIOS,
    OffPolicyCorrection,
    TrainStepConfig,
    make_rollout_scorer,
    make_train_step,
)

TOP_P = dataclasses.replace(SAMPLING, temperature=0.8, top_p=0.7, max_new_tokens=4)


@pytest.fixture(autouse=True, scope="module")
def _fast_compile():
    with fast_compile():
        yield


@pytest.fixture(scope="module")
def sampled():
    """A policy, its state and a batch of top-p samples with the sampler's logprobs."""
    model, _ = tiny_model()
    mesh = one_device_mesh()
    policy = Policy.create(model, decisive_params(), "lora", LORA, mesh, has_reference=False)
    optimizer = make_optimizer(optim_config(learning_rate=0.05))
    state = init_train_state(
        policy.init_trainable(jax.random.key(1)), optimizer, jax.random.key(0), mesh
    )
    completions = policy.sample(state.trainable, PROMPTS, jax.random.key(3), TOP_P, NO_STOPS)
    rewards = np.arange(len(PROMPTS) * GROUP, dtype=np.float32) % 3
    batch, _ = make_train_batch(completions, rewards, mesh, GROUP, "grpo", 1e-4)
    return policy, state, optimizer, batch


def trainer_logits(policy, state, batch):
    inputs = [batch[k] for k in INPUT_KEYS]
    variables = policy.live_variables(state.trainable)
    hidden = completion_hidden(policy.model, variables, *inputs, rows_per_prompt=GROUP)
    return policy.model.apply(variables, hidden, method=Decoder.logits)


def assert_on_policy_weights_are_one(log_ratios, mask):
    w, _ = importance_weights(log_ratios, mask, OffPolicyConfig("tis", "token", 2.0))
    np.testing.assert_allclose(np.asarray(w)[np.asarray(mask) > 0], 1.0, atol=1e-4)


def test_weights_against_the_sampling_distribution_are_one_on_policy(sampled):
    policy, state, optimizer, batch = sampled
    mask = batch["completion_mask"]
    step_cfg = TrainStepConfig(
        num_microbatches=1,
        num_iterations=1,
        group_size=GROUP,
        off_policy=OffPolicyCorrection(OffPolicyConfig("tis", "token", 2.0), TOP_P),
    )
    scored = make_rollout_scorer(policy, loss_config("grpo"), step_cfg, state)(state, batch)
    assert "old_logprobs" not in scored  # mu = 1: the ratio pi / pi_old stays exactly 1
    assert_on_policy_weights_are_one(scored[IS_LOG_RATIOS], mask)

    # The naive ratio, against the tempered but untruncated policy, fails the same check:
    logits = trainer_logits(policy, state, batch)
    untruncated, _ = token_logprobs_and_entropy(logits, batch["completion_ids"], TOP_P.temperature)
    naive = token_log_ratios(untruncated, batch["sampler_logprobs"], mask)
    with pytest.raises(AssertionError):
        assert_on_policy_weights_are_one(naive, mask)
    # ... off by exactly the mass top-p kept: the naive weights are all <= 1.
    assert np.all(np.asarray(naive)[np.asarray(mask) > 0] <= 1e-5)


def test_train_step_with_the_correction_reports_its_metrics(sampled):
    policy, state, optimizer, batch = sampled
    step_cfg = TrainStepConfig(
        num_microbatches=2,
        num_iterations=1,
        group_size=GROUP,
        off_policy=OffPolicyCorrection(OffPolicyConfig("mis", "sequence", 1.5), TOP_P),
    )
    loss_cfg = loss_config("grpo")
    scored = make_rollout_scorer(policy, loss_cfg, step_cfg, state)(state, batch)
    schedule = make_schedule(optim_config(learning_rate=0.05))
    state_copy = jax.tree.map(jax.numpy.copy, state)
    step = make_train_step(policy, loss_cfg, step_cfg, optimizer, schedule, state_copy)
    _, metrics = step(state_copy, scored)
    np.testing.assert_allclose(metrics["off_policy/weight_mean"], 1.0, atol=1e-3)
    assert float(metrics["off_policy/capped_frac"]) == 0.0
    assert float(metrics["off_policy/logprob_gap"]) < 1e-4


def test_tis_and_mis_weights_by_hand():
    trainer = np.log(np.array([[0.5, 0.2, 0.9], [0.1, 0.3, 0.7]], np.float32))
    sampler = np.log(np.array([[0.25, 0.2, 0.3], [0.2, 0.6, 0.7]], np.float32))
    mask = np.array([[1, 1, 1], [1, 1, 0]], np.int32)
    log_r = token_log_ratios(trainer, sampler, mask)
    token = np.array([[2.0, 1.0, 3.0], [0.5, 0.5, 0.0]])
    sequence = np.array([[6.0] * 3, [0.25, 0.25, 0.0]])
    cases = {
        ("tis", "token"): np.minimum(token, 2.5),
        ("mis", "token"): np.where(token <= 2.5, token, 0.0),
        ("tis", "sequence"): np.minimum(sequence, 2.5),
        ("mis", "sequence"): np.where(sequence <= 2.5, sequence, 0.0),
    }
    for (correction, level), expected in cases.items():
        cfg = OffPolicyConfig(correction, level, 2.5)
        w, raw = importance_weights(log_r, mask, cfg)
        np.testing.assert_allclose(w, expected * mask, rtol=1e-5, err_msg=f"{correction} {level}")
        np.testing.assert_allclose(raw, (token if level == "token" else sequence) * mask, rtol=1e-5)
    metrics = off_policy_metrics(log_r, mask, OffPolicyConfig("tis", "token", 2.5))
    np.testing.assert_allclose(metrics["off_policy/weight_mean"], 7.0 / 5, rtol=1e-5)
    np.testing.assert_allclose(metrics["off_policy/weight_max"], 3.0, rtol=1e-5)
    np.testing.assert_allclose(metrics["off_policy/capped_frac"], 1.0 / 5, rtol=1e-5)
    np.testing.assert_allclose(
        metrics["off_policy/logprob_gap"], 3 * np.log(2.0) / 5 + np.log(3.0) / 5, rtol=1e-5
    )


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="rl.off_policy.correction"):
        OffPolicyConfig("is", "token", 2.0)
    with pytest.raises(ValueError, match="rl.off_policy.level"):
        OffPolicyConfig("tis", "step", 2.0)
    with pytest.raises(ValueError, match="rl.off_policy.cap"):
        OffPolicyConfig("tis", "token", 0.5)
    greedy = dataclasses.replace(SAMPLING, temperature=0.0)
    with pytest.raises(ValueError, match="greedy"):
        OffPolicyCorrection(OffPolicyConfig("tis", "token", 2.0), greedy)


def test_ppo_scorer_gives_the_same_on_policy_weights(sampled):
    from rlvr_jax.rl.ppo import (
        PPOConfig,
        init_critic,
        make_ppo_batch,
        make_ppo_scorer,
        make_ppo_train_step,
    )

    policy, _, optimizer, batch = sampled
    cfg = PPOConfig("shared", 1.0, 1.0, 0.1, 0.2, 1e-3, 0, True, "reward")
    state = init_train_state(
        policy.init_trainable(jax.random.key(1)),
        optimizer,
        jax.random.key(0),
        policy.mesh,
        init_critic(policy, cfg, jax.random.key(2)),
        optimizer,
    )
    step_cfg = TrainStepConfig(
        num_microbatches=2,
        num_iterations=1,
        group_size=GROUP,
        off_policy=OffPolicyCorrection(OffPolicyConfig("tis", "token", 2.0), TOP_P),
    )
    completions = policy.sample(state.trainable, PROMPTS, jax.random.key(3), TOP_P, NO_STOPS)
    rewards = np.arange(len(PROMPTS) * GROUP, dtype=np.float32) % 3
    scorer = make_ppo_scorer(policy, cfg, 0.0, "k3", step_cfg, state)
    scored, _ = scorer(state, make_ppo_batch(completions, rewards, policy.mesh))
    assert_on_policy_weights_are_one(scored[IS_LOG_RATIOS], scored["completion_mask"])
    schedule = make_schedule(optim_config(learning_rate=0.05))
    step = make_ppo_train_step(
        policy, cfg, loss_config("dapo"), step_cfg, optimizer, optimizer, schedule, state
    )
    _, metrics = step(state, scored)
    np.testing.assert_allclose(metrics["off_policy/weight_mean"], 1.0, atol=1e-3)
