"""The jitted train step: REINFORCE at mu = 1, micro-batch invariance, the reference policy,
full fine-tuning, donation.

Gradients are read back from the step itself: with plain SGD at learning rate 1 the update
is ``new = old - grad``.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from tiny_rl import (
    LORA,
    ROWS,
    fast_compile,
    host_batch,
    loss_config,
    nonzero_lora,
    optim_config,
    tiny_model,
    tiny_policy,
)

from rlvr_jax.models import left_padded_positions
from rlvr_jax.models.lora import init_lora
from rlvr_jax.optim import make_optimizer, make_schedule
from rlvr_jax.parallel import MeshConfig, make_mesh, shard_batch
from rlvr_jax.rl.train_state import init_train_state
from rlvr_jax.rl.train_step import TrainStepConfig, make_rollout_scorer, make_train_step

SGD = optax.sgd(1.0)


@pytest.fixture(autouse=True, scope="module")
def _fast_compile():
    with fast_compile():
        yield


def constant_lr(step):
    return jnp.ones_like(step, jnp.float32)


@pytest.fixture(scope="module")
def mesh():
    return make_mesh(MeshConfig(data=1, fsdp=1), jax.devices()[:1])


def to_host(tree):
    return jax.tree.map(np.asarray, tree)


def run_step(mesh, mode, trainable, loss_cfg, step_cfg, batch, optimizer=SGD, schedule=constant_lr):
    """Scorer + one step; returns (trainable before, state after, metrics, batch, step, scorer)."""
    policy = tiny_policy(mode, mesh, has_reference=loss_cfg.beta > 0)
    state = init_train_state(trainable, optimizer, jax.random.key(0), mesh)
    before = to_host(state.trainable)
    step = make_train_step(policy, loss_cfg, step_cfg, optimizer, schedule, state)
    scorer = make_rollout_scorer(policy, loss_cfg, step_cfg, state)
    batch = scorer(state, shard_batch(batch, mesh))
    new_state, metrics = step(state, batch)
    return before, new_state, to_host(metrics), batch, step, scorer


@jax.jit
def reinforce_loss(lora, batch, w_RL, z):
    """-sum_i A_i sum_t w[i, t] logp[i, t] / Z, with logp from the full [R, P + L, V] logits."""
    model, params = tiny_model()
    tokens = jnp.concatenate([batch["prompt_ids"], batch["completion_ids"]], axis=1)
    mask = jnp.concatenate([batch["prompt_mask"], batch["completion_mask"]], axis=1)
    logits, _ = model.apply(
        {"params": params, "lora": lora}, tokens, left_padded_positions(mask), mask
    )
    P = batch["prompt_ids"].shape[1]
    logp = jax.nn.log_softmax(logits[:, P - 1 : -1], axis=-1)
    logp = jnp.take_along_axis(logp, batch["completion_ids"][..., None], axis=-1)[..., 0]
    return -jnp.sum(batch["advantages"][:, None] * w_RL * logp) / z


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo"])
def test_mu1_beta0_is_the_reinforce_gradient(mesh, loss_type):
    _, params = tiny_model()
    lora = nonzero_lora(params)
    host = host_batch()  # its placeholder old_logprobs must be ignored at mu = 1
    del host["ref_logprobs"]
    loss_cfg = loss_config(loss_type, beta=0.0)
    step_cfg = TrainStepConfig(num_microbatches=2, num_iterations=1, group_size=1)
    before, state, metrics, *_ = run_step(mesh, "lora", lora, loss_cfg, step_cfg, host)
    grads = jax.tree.map(lambda old, new: old - np.asarray(new), before, state.trainable)

    m = host["completion_mask"].astype(np.float32)
    if loss_type == "grpo":  # per-sequence token mean, Z = R rows
        w, z = m / m.sum(axis=1, keepdims=True), ROWS
    else:  # token sum, Z = R * max_completion_len
        w, z = m, ROWS * loss_cfg.max_completion_len

    expected = jax.grad(reinforce_loss)(lora, host, w, np.float32(z))
    # The value is the surrogate at ratio 1: -sum(A w) / Z (logp only enters the gradient).
    loss = -np.sum(host["advantages"][:, None] * w) / z
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5)
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=1e-4)
    assert metrics["policy/ratio_mean"] == 1.0, "mu = 1 must use stop_gradient(logp) as old"
    assert metrics["policy/clip_frac_low"] == metrics["policy/clip_frac_high"] == 0.0
    assert "kl/mean" not in metrics, "beta = 0 must skip the reference forward"
    assert metrics["grad/norm"] == pytest.approx(float(optax.tree.norm(expected)), rel=1e-5)
    assert int(state.step) == 1


# One loss per aggregation (sequence_mean, token_mean, token_sum_max_len); the ratio levels
# (gspo) are split-invariant at the loss level, see test_losses.py.
@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
def test_microbatch_split_does_not_change_the_update(mesh, loss_type):
    _, params = tiny_model()
    lora = nonzero_lora(params)
    loss_cfg = loss_config(loss_type, beta=0.04)
    # mu = 2 with the batch's own (placeholder) old/ref logprobs: ratios far from 1, so both
    # clips are active and the KL term is large. The scorer is not used here.
    runs = {}
    for m in (1, 2, 4):
        step_cfg = TrainStepConfig(num_microbatches=m, num_iterations=2, group_size=1)
        policy = tiny_policy("lora", mesh, has_reference=True)
        state = init_train_state(lora, SGD, jax.random.key(0), mesh)
        step = make_train_step(policy, loss_cfg, step_cfg, SGD, constant_lr, state)
        new_state, metrics = step(state, shard_batch(host_batch(), mesh))
        runs[m] = (to_host(new_state.trainable), to_host(metrics))
    one_trainable, one_metrics = runs[1]
    assert one_metrics["policy/clip_frac_low"] > 0 and one_metrics["policy/clip_frac_high"] > 0
    assert one_metrics["kl/mean"] > 0.1
    for m in (2, 4):
        trainable, metrics = runs[m]
        assert metrics.keys() == one_metrics.keys()
        for key, value in one_metrics.items():
            np.testing.assert_allclose(metrics[key], value, rtol=1e-5, atol=1e-7, err_msg=key)
        # SGD at lr 1: new = old - grad, so this compares the gradients.
        leaves = zip(jax.tree.leaves(trainable), jax.tree.leaves(one_trainable), strict=True)
        for got, want in leaves:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"M={m}")


def test_zero_b_reference_equals_policy_and_kl_is_zero(mesh):
    _, params = tiny_model()
    lora = init_lora(params, LORA, jax.random.key(3))  # b = 0
    loss_cfg = loss_config("grpo", beta=0.04)
    step_cfg = TrainStepConfig(num_microbatches=2, num_iterations=2, group_size=1)
    _, _, metrics, batch, *_ = run_step(mesh, "lora", lora, loss_cfg, step_cfg, host_batch())
    old, ref = np.asarray(batch["old_logprobs"]), np.asarray(batch["ref_logprobs"])
    np.testing.assert_array_equal(old, ref)
    assert np.all(old[host_batch()["completion_mask"] == 1] < 0)
    assert metrics["kl/mean"] == 0.0
    assert metrics["policy/ratio_mean"] == pytest.approx(1.0, abs=1e-6)


def test_full_finetuning_trains_every_param_against_the_initial_copy(mesh):
    _, params = tiny_model()
    loss_cfg = loss_config("dapo", beta=0.04)
    step_cfg = TrainStepConfig(num_microbatches=1, num_iterations=1, group_size=1)
    optim = optim_config(learning_rate=1e-2)
    optimizer = make_optimizer(optim)
    before, state, metrics, batch, step, scorer = run_step(
        mesh, "full", params, loss_cfg, step_cfg, host_batch(), optimizer, make_schedule(optim)
    )
    assert metrics["kl/mean"] == pytest.approx(0.0, abs=1e-6)  # step 0: policy == reference
    assert metrics["optim/lr"] == pytest.approx(1e-2)
    flat_before = jax.tree_util.tree_leaves_with_path(before)
    for (path, old), new in zip(flat_before, jax.tree.leaves(state.trainable), strict=True):
        assert not np.array_equal(old, np.asarray(new)), f"{jax.tree_util.keystr(path)} frozen"
    # The reference (the caller's params) survived the donated step, unchanged.
    for old, ref in zip(jax.tree.leaves(before), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(old, np.asarray(ref))
    _, metrics = step(state, scorer(state, batch))
    assert float(metrics["kl/mean"]) > 1e-6, "after an update the policy leaves the reference"


def test_state_is_donated_and_the_step_compiles_once(mesh):
    policy = tiny_policy("lora", mesh, has_reference=False)
    loss_cfg = loss_config("grpo")
    step_cfg = TrainStepConfig(num_microbatches=1, num_iterations=1, group_size=1)
    state = init_train_state(policy.init_trainable(jax.random.key(0)), SGD, jax.random.key(0), mesh)
    base = policy.frozen
    step = make_train_step(policy, loss_cfg, step_cfg, SGD, constant_lr, state)
    batch = shard_batch(host_batch(), mesh)
    new_state, _ = step(state, batch)
    assert all(x.is_deleted() for x in jax.tree.leaves(state))
    assert not any(x.is_deleted() for x in jax.tree.leaves(batch))
    assert not any(x.is_deleted() for x in jax.tree.leaves(base))
    compiled = step.func._cache_size()
    new_state, _ = step(new_state, shard_batch(host_batch(seed=1), mesh))
    assert step.func._cache_size() == compiled
    assert int(new_state.step) == 2


def test_missing_batch_fields_and_bad_configs_are_named(mesh):
    policy = tiny_policy("lora", mesh, has_reference=False)
    state = init_train_state(policy.init_trainable(jax.random.key(0)), SGD, jax.random.key(0), mesh)
    step_cfg = TrainStepConfig(num_microbatches=1, num_iterations=2, group_size=1)
    step = make_train_step(policy, loss_config("grpo"), step_cfg, SGD, constant_lr, state)
    batch = {k: v for k, v in host_batch().items() if k != "old_logprobs"}
    with pytest.raises(ValueError, match=r"missing \['old_logprobs \(rl.num_iterations > 1"):
        step(state, shard_batch(batch, mesh))
    # The scorer's reference and the loss's KL term must agree.
    with pytest.raises(ValueError, match=r"rl.beta = 0.1: the policy was built with has_reference"):
        make_rollout_scorer(policy, loss_config("grpo", beta=0.1), step_cfg, state)
    with pytest.raises(ValueError, match="rl.trainable: unknown mode 'qlora'"):
        tiny_policy("qlora", mesh, has_reference=False)
    for fields, key in [
        (dict(num_microbatches=0), "rl.num_microbatches"),
        (dict(num_iterations=0), "rl.num_iterations"),
    ]:
        with pytest.raises(ValueError, match=key):
            dataclasses.replace(step_cfg, **fields)


@pytest.mark.parametrize(
    "rows, num_microbatches, run, rows_per_prompt",
    [
        (16, 1, 4, 4),
        (16, 2, 4, 4),  # whole prompts per micro-batch: each prompt run once
        (16, 4, 4, 4),
        (12, 2, 1, 2),  # 3 prompts do not split in 2: strided rows, 2 of a prompt's 4 each
    ],
)
def test_shared_prompts_give_the_same_update(mesh, rows, num_microbatches, run, rows_per_prompt):
    """Running each prompt once per group (group_size = G) changes nothing but the cost."""
    _, params = tiny_model()
    lora = nonzero_lora(params)
    loss_cfg = loss_config("grpo", beta=0.04)
    host = host_batch(rows=rows, group=4)  # rows / 4 prompts x G = 4
    runs = {}
    for group_size in (1, 4):
        step_cfg = TrainStepConfig(
            num_microbatches=num_microbatches, num_iterations=2, group_size=group_size
        )
        layout = step_cfg.layout(rows, mesh.size)
        if group_size == 4:
            assert (layout.run, layout.rows_per_prompt) == (run, rows_per_prompt)
        policy = tiny_policy("lora", mesh, has_reference=True)
        state = init_train_state(lora, SGD, jax.random.key(0), mesh)
        scorer = make_rollout_scorer(policy, loss_cfg, step_cfg, state)
        batch = scorer(state, shard_batch(host, mesh))
        step = make_train_step(policy, loss_cfg, step_cfg, SGD, constant_lr, state)
        new_state, metrics = step(state, batch)
        runs[group_size] = (to_host(batch), to_host(new_state.trainable), to_host(metrics))
    (batch1, lora1, metrics1), (batch4, lora4, metrics4) = runs[1], runs[4]
    for key in ("old_logprobs", "ref_logprobs"):
        np.testing.assert_allclose(batch4[key], batch1[key], atol=1e-5, err_msg=key)
    for a, b in zip(jax.tree.leaves(lora4), jax.tree.leaves(lora1), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    for key in metrics1:
        np.testing.assert_allclose(metrics4[key], metrics1[key], rtol=1e-4, atol=1e-6)
