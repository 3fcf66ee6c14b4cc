"""Online DPO: pair selection on controlled verdicts, and the losses against hand formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlvr_jax.rl.dpo import DPOConfig, preference_loss, select_pairs


def test_pairs_join_best_accepted_with_worst_rejected():
    G = 4
    correct = np.array([1, 0, 1, 0] + [0, 1, 0, 0], bool)
    rewards = np.array([1.0, 0.1, 1.1, 0.0] + [0.2, 1.0, 0.2, 0.5])
    pairs = select_pairs(correct, rewards, G, pairs_per_prompt=2)
    # prompt 0: accepted by reward desc [2, 0], rejected asc [3, 1] -> (2, 3), (0, 1)
    # prompt 1: accepted [5], rejected asc, tie by index [4, 6, 7] -> (5, 4); one slot unused
    np.testing.assert_array_equal(pairs.chosen, [2, 0, 5, 4])
    np.testing.assert_array_equal(pairs.rejected, [3, 1, 4, 4])
    np.testing.assert_array_equal(pairs.valid, [True, True, True, False])
    assert pairs.skipped == 0


def test_all_correct_and_all_wrong_groups_are_skipped():
    G = 3
    correct = np.array([1, 1, 1] + [0, 0, 0] + [0, 1, 0], bool)
    rewards = np.array([1.0, 1.0, 1.0] + [0.0, 0.5, 0.0] + [0.0, 1.0, 0.0])
    pairs = select_pairs(correct, rewards, G, pairs_per_prompt=1)
    np.testing.assert_array_equal(pairs.valid, [False, False, True])
    assert pairs.skipped == 2
    # unused slots point at their own group's first row (static shape, weight 0)
    np.testing.assert_array_equal(pairs.chosen, [0, 3, 7])
    np.testing.assert_array_equal(pairs.rejected, [0, 3, 6])


def test_verdict_not_reward_decides_the_pair():
    """A format bonus can make a wrong answer score more than a right one: the verifier's
    verdict still picks the chosen sample."""
    correct = np.array([0, 1], bool)
    rewards = np.array([1.5, 1.0])
    pairs = select_pairs(correct, rewards, 2, pairs_per_prompt=1)
    assert (pairs.chosen[0], pairs.rejected[0]) == (1, 0)


def reference(pc, pr, rc, rr, beta, loss):
    h = (pc - rc) - (pr - rr)
    if loss == "sigmoid":
        value = -np.log(1.0 / (1.0 + np.exp(-beta * h)))
        grad_pc = -beta / (1.0 + np.exp(beta * h))  # -beta * sigmoid(-beta h)
    else:
        value = (h - 1.0 / (2.0 * beta)) ** 2
        grad_pc = 2.0 * (h - 1.0 / (2.0 * beta))
    return value, grad_pc


@pytest.mark.parametrize("loss", ["sigmoid", "ipo"])
def test_preference_loss_and_gradient(loss):
    rng = np.random.default_rng(0)
    pc, pr, rc, rr = (rng.normal(-20.0, 5.0, size=6) for _ in range(4))
    beta = 0.1
    value, stats = preference_loss(pc, pr, rc, rr, beta, loss)
    ref_value, ref_grad = reference(pc, pr, rc, rr, beta, loss)
    np.testing.assert_allclose(value, ref_value, rtol=1e-5, atol=1e-6)
    grads = jax.grad(
        lambda c, r: jnp.sum(preference_loss(c, r, rc, rr, beta, loss)[0]), argnums=(0, 1)
    )(jnp.asarray(pc), jnp.asarray(pr))
    np.testing.assert_allclose(grads[0], ref_grad, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads[1], -ref_grad, rtol=1e-5, atol=1e-6)  # h is antisymmetric
    h = (pc - rc) - (pr - rr)
    np.testing.assert_allclose(stats["dpo/margin"], beta * h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats["dpo/reward_chosen"], beta * (pc - rc), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(stats["dpo/accuracy"], (h > 0).astype(np.float32))


def test_sigmoid_loss_at_zero_margin_is_log_2():
    value, _ = preference_loss(*(jnp.zeros(1) for _ in range(4)), beta=0.1, loss="sigmoid")
    np.testing.assert_allclose(value, np.log(2.0), rtol=1e-6)


def test_dpo_config_errors_name_the_key():
    with pytest.raises(ValueError, match="rl.dpo.loss"):
        DPOConfig(loss="hinge2", pairs_per_prompt=1)
    with pytest.raises(ValueError, match="rl.dpo.pairs_per_prompt"):
        DPOConfig(loss="sigmoid", pairs_per_prompt=0)
