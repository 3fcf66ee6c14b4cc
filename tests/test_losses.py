"""Policy losses: hand-computed values, the REINFORCE gradient, micro-batch invariance.

The NumPy references below are written from the papers' formulas (objective form, per-token
loops), independently of rlvr_jax.rl.losses.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlvr_jax.rl.losses import (
    POLICY_LOSSES,
    LossConfig,
    finalize_metrics,
    get_policy_loss,
    loss_normalizer,
    policy_loss,
)
from rlvr_jax.rl.microbatch import (
    accumulate_gradients,
    merge_microbatches,
    microbatch_layout,
    split_microbatches,
)

LOSS_TYPES = sorted(POLICY_LOSSES)
MAX_LEN = 6  # L for dr_grpo; larger than T on purpose

# Toy batch: 2 groups x 3 samples, T = 4. Padded positions hold garbage that overflows
# exp() in float32 unless the implementation masks before exponentiating.
MASK = np.array(
    [[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
    np.float32,
)
ADV = np.array([0.9, -1.2, 0.3, -0.5, 1.1, -0.6], np.float32)
OLD = np.array(
    [
        [-1.2, -0.7, -2.1, -0.4],
        [-2.5, -0.9, -100.0, -100.0],
        [-1.0, -1.5, -0.8, -100.0],
        [-0.6, -100.0, -100.0, -100.0],
        [-1.1, -1.9, -0.5, -2.2],
        [-2.0, -0.3, -100.0, -100.0],
    ],
    np.float32,
)
# logp - old: exercises the low clip, the high clip (DAPO clip-higher) and the dual clip.
DELTA = np.array(
    [
        [0.1, 0.5, -0.4, 0.0],
        [1.3, -0.4, 100.0, 100.0],
        [0.2, -0.1, 0.3, 100.0],
        [-0.3, 100.0, 100.0, 100.0],
        [0.05, 0.25, -0.25, 0.6],
        [1.2, 0.0, 100.0, 100.0],
    ],
    np.float32,
)
LOGP = (OLD + DELTA).astype(np.float32)
REF = (LOGP + np.array([[0.3, -0.2, 0.1, -0.4]] * 6, np.float32)).astype(np.float32)
REF[MASK == 0] = 100.0
ENTROPY = np.linspace(0.5, 2.0, 24, dtype=np.float32).reshape(6, 4)


def make_cfg(loss_type, *, beta=0.0, kl="k3", dual_clip=3.0, eps_low=0.2, eps_high=0.28):
    return LossConfig(
        loss_type=loss_type,
        eps_low=eps_low,
        eps_high=eps_high,
        dual_clip=None if loss_type == "cispo" else dual_clip,  # a PPO-clip option only
        beta=beta,
        kl_estimator=kl,
        max_completion_len=MAX_LEN,
    )


def top20_entropy(entropy, mask):
    """Mean of the ceil(20%) largest entropies among completion tokens (ties included)."""
    values = np.sort(np.asarray(entropy)[np.asarray(mask) > 0])[::-1]
    threshold = values[int(np.ceil(0.2 * len(values))) - 1]
    return float(values[values >= threshold].mean())


def reference(loss_type, logp, old, ref, adv, mask, entropy, cfg):
    """Loss and token-mean metrics, float64 loops."""
    logp, old, adv, mask = (np.asarray(x, np.float64) for x in (logp, old, adv, mask))
    B, T = logp.shape
    lo, hi, c = 1 - cfg.eps_low, 1 + cfg.eps_high, cfg.dual_clip

    def kl(lp, rf):
        if cfg.kl_estimator == "k1":
            return lp - rf
        if cfg.kl_estimator == "k2":
            return 0.5 * (lp - rf) ** 2
        return math.exp(rf - lp) - (rf - lp) - 1

    seq_sums, lengths, total = [], [], 0.0
    counts = dict(low=0, high=0, dual=0, ratio=0.0, kl=0.0, ent=0.0)
    for i in range(B):
        toks = [t for t in range(T) if mask[i, t] == 1]
        seq_ratio = math.exp(sum(logp[i, t] - old[i, t] for t in toks) / len(toks))
        seq_sum = 0.0
        for t in toks:
            r = seq_ratio if loss_type == "gspo" else math.exp(logp[i, t] - old[i, t])
            a = adv[i]
            if loss_type == "cispo":  # MiniMax-M1 eq. 4: sg(clip(r)) * A * log pi
                token_loss = -min(r, hi) * a * logp[i, t]
            else:
                objective = min(r * a, min(max(r, lo), hi) * a)
                if c is not None and a < 0:
                    objective = max(objective, c * a)
                token_loss = -objective
            if ref is not None:
                k = kl(logp[i, t], float(ref[i, t]))
                counts["kl"] += k
                token_loss += cfg.beta * k
            seq_sum += token_loss
            if loss_type == "cispo":
                counts["high"] += r > hi
            else:
                counts["low"] += r < lo and a < 0
                counts["high"] += r > hi and a > 0
            counts["dual"] += c is not None and r > c and a < 0
            counts["ratio"] += r
            counts["ent"] += float(entropy[i, t])
        seq_sums.append(seq_sum)
        lengths.append(len(toks))
        total += seq_sum
    n_tokens = sum(lengths)
    if loss_type in ("grpo", "gspo"):
        loss = sum(s / n for s, n in zip(seq_sums, lengths, strict=True)) / B
    elif loss_type in ("bnpo", "dapo", "cispo"):
        loss = total / n_tokens
    else:  # dr_grpo
        loss = total / (B * MAX_LEN)
    metrics = {
        "policy/clip_frac_low": counts["low"] / n_tokens,
        "policy/clip_frac_high": counts["high"] / n_tokens,
        "policy/dual_clip_frac": counts["dual"] / n_tokens,
        "policy/ratio_mean": counts["ratio"] / n_tokens,
        "policy/entropy": counts["ent"] / n_tokens,
        "policy/entropy_top20": top20_entropy(entropy, mask),
    }
    if ref is not None:
        metrics["kl/mean"] = counts["kl"] / n_tokens
    return loss, metrics


def run_loss(cfg, logp=LOGP, old=OLD, ref=REF, adv=ADV, mask=MASK, entropy=ENTROPY):
    z = loss_normalizer(jnp.asarray(mask), cfg)
    ref = None if ref is None else jnp.asarray(ref)
    old = None if old is None else jnp.asarray(old)
    loss, sums = policy_loss(
        jnp.asarray(logp), old, ref, jnp.asarray(adv), jnp.asarray(mask), z, cfg, entropy
    )
    return loss, finalize_metrics(sums)


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
@pytest.mark.parametrize(
    "beta,kl,dual_clip",
    [(0.0, None, None), (0.0, None, 3.0), (0.05, "k1", 3.0), (0.05, "k2", None), (0.05, "k3", 3.0)],
)
def test_hand_computed(loss_type, beta, kl, dual_clip):
    cfg = make_cfg(loss_type, beta=beta, kl=kl or "k3", dual_clip=dual_clip)
    ref = None if kl is None else REF
    loss, metrics = run_loss(cfg, ref=ref, entropy=jnp.asarray(ENTROPY))
    expected_loss, expected_metrics = reference(loss_type, LOGP, OLD, ref, ADV, MASK, ENTROPY, cfg)
    assert np.isfinite(float(loss))
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-6, atol=1e-6)
    assert set(metrics) == set(expected_metrics)
    for key, value in expected_metrics.items():
        np.testing.assert_allclose(metrics[key], value, rtol=1e-6, atol=1e-6, err_msg=key)


def test_toy_batch_exercises_every_clip():
    _, metrics = run_loss(make_cfg("grpo"), ref=None)
    for key in ("policy/clip_frac_low", "policy/clip_frac_high", "policy/dual_clip_frac"):
        assert float(metrics[key]) > 0, key


def reinforce_weights(loss_type, mask):
    """d loss / d logp = -A * (this) on-policy, per the aggregation of each loss type."""
    B = mask.shape[0]
    lengths = mask.sum(axis=1, keepdims=True)
    if loss_type in ("grpo", "gspo"):
        return mask / lengths / B
    if loss_type in ("bnpo", "dapo", "cispo"):
        return mask / mask.sum()
    return mask / (B * MAX_LEN)


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_on_policy_gradient_is_reinforce(loss_type):
    cfg = make_cfg(loss_type)  # beta = 0, dual clip on (inactive at ratio 1)
    mask = jnp.asarray(MASK)
    z = loss_normalizer(mask, cfg)

    def loss_of_logp(logp_BT):
        return policy_loss(logp_BT, None, None, jnp.asarray(ADV), mask, z, cfg)

    (_, sums), grad_BT = jax.value_and_grad(loss_of_logp, has_aux=True)(jnp.asarray(LOGP))
    expected = -ADV[:, None] * reinforce_weights(loss_type, MASK)
    np.testing.assert_allclose(grad_BT, expected, rtol=1e-6, atol=1e-7)
    metrics = finalize_metrics(sums)
    np.testing.assert_allclose(metrics["policy/ratio_mean"], 1.0, rtol=1e-6)
    assert float(metrics["policy/clip_frac_low"]) == float(metrics["policy/clip_frac_high"]) == 0
    assert "kl/mean" not in metrics


def test_cispo_keeps_the_gradient_of_clipped_tokens():
    """Off-policy (mu > 1), PPO zeroes the gradient of a token whose ratio left the clip
    range on the side its advantage pushes; CISPO keeps it, scaled by the clipped weight."""
    mask = jnp.ones((1, 2))
    old = jnp.log(jnp.array([[0.2, 0.2]]))
    logp = jnp.log(jnp.array([[0.3, 0.21]]))  # ratios 1.5 (outside 1 + 0.28) and 1.05
    adv = jnp.array([1.0])
    grads = {}
    for loss_type in ("dapo", "cispo"):
        cfg = make_cfg(loss_type)
        z = loss_normalizer(mask, cfg)
        grads[loss_type] = jax.grad(
            lambda lp, cfg=cfg, z=z: policy_loss(lp, old, None, adv, mask, z, cfg)[0]
        )(logp)
    np.testing.assert_allclose(grads["dapo"][0], [0.0, -1.05 / 2], rtol=1e-5)
    np.testing.assert_allclose(grads["cispo"][0], [-1.28 / 2, -1.05 / 2], rtol=1e-5)


def test_cispo_refuses_the_dual_clip():
    with pytest.raises(ValueError, match="rl.dual_clip"):
        LossConfig(
            loss_type="cispo",
            eps_low=0.2,
            eps_high=0.28,
            dual_clip=3.0,
            beta=0.0,
            kl_estimator="k3",
            max_completion_len=4,
        )


def test_gspo_gradient_equals_sequence_level_objective():
    """The GSPO-token stop-gradient form has the gradient of the sequence-level objective."""
    cfg = make_cfg("gspo", dual_clip=None)
    mask = jnp.asarray(MASK)
    lengths = mask.sum(axis=1)

    def sequence_level(logp_BT):  # GSPO paper, eq. for J_GSPO, with s_i differentiable
        s_B = jnp.exp(jnp.sum(mask * (logp_BT - OLD), axis=1) / lengths)
        clipped_B = jnp.clip(s_B, 1 - cfg.eps_low, 1 + cfg.eps_high)
        return -jnp.mean(jnp.minimum(s_B * ADV, clipped_B * ADV))

    def ours(logp_BT):
        z = loss_normalizer(mask, cfg)
        return policy_loss(logp_BT, jnp.asarray(OLD), None, jnp.asarray(ADV), mask, z, cfg)[0]

    logp = jnp.asarray(LOGP)
    np.testing.assert_allclose(ours(logp), sequence_level(logp), rtol=1e-6)
    np.testing.assert_allclose(jax.grad(ours)(logp), jax.grad(sequence_level)(logp), atol=1e-7)


# Micro-batch invariance: a shared parameter vector, B = 8 rows, ragged masks.
B_MB, T_MB = 8, 5


def microbatch_problem():
    rng = np.random.default_rng(0)
    lengths = np.array([5, 1, 3, 4, 2, 5, 3, 1])
    batch = {
        "base": rng.normal(size=(B_MB, T_MB)).astype(np.float32),
        "feat": rng.normal(size=(B_MB, T_MB)).astype(np.float32),
        "old": np.log(rng.uniform(0.05, 0.95, size=(B_MB, T_MB))).astype(np.float32),
        "ref": np.log(rng.uniform(0.05, 0.95, size=(B_MB, T_MB))).astype(np.float32),
        "adv": rng.normal(size=(B_MB,)).astype(np.float32),
        "mask": (np.arange(T_MB)[None, :] < lengths[:, None]).astype(np.float32),
        "entropy": rng.uniform(0, 3, size=(B_MB, T_MB)).astype(np.float32),
    }
    theta = jnp.asarray(rng.normal(size=(T_MB,)).astype(np.float32))
    return theta, jax.tree.map(jnp.asarray, batch)


def make_loss_fn(cfg, normalizer):
    def loss_fn(theta_T, mb):
        logp_BT = jax.nn.log_sigmoid(mb["base"] + mb["feat"] * theta_T[None, :])
        return policy_loss(
            logp_BT, mb["old"], mb["ref"], mb["adv"], mb["mask"], normalizer, cfg, mb["entropy"]
        )

    return loss_fn


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_microbatch_invariance(loss_type):
    cfg = make_cfg(loss_type, beta=0.04, kl="k3", dual_clip=3.0)
    theta, batch = microbatch_problem()
    loss_fn = make_loss_fn(cfg, loss_normalizer(batch["mask"], cfg))
    results = {
        m: jax.jit(accumulate_gradients, static_argnums=(0, 3))(loss_fn, theta, batch, m)
        for m in (1, 2, 4)
    }
    # Runs of 2 rows kept together (a prompt's samples): the same sums.
    results["runs of 2"] = jax.jit(accumulate_gradients, static_argnums=(0, 3, 4))(
        loss_fn, theta, batch, 2, 2
    )
    # A contiguous split, summed by hand: the split pattern does not matter either.
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    halves = [jax.tree.map(lambda x, k=k: x[k * 4 : (k + 1) * 4], batch) for k in (0, 1)]
    (loss_a, sums_a), grad_a = grad_fn(theta, halves[0])
    (loss_b, sums_b), grad_b = grad_fn(theta, halves[1])
    sums_ab = jax.tree.map(jnp.add, sums_a, sums_b)
    results["contiguous"] = (loss_a + loss_b, grad_a + grad_b, sums_ab)
    loss_1, grad_1, sums_1 = results[1]
    assert float(jnp.linalg.norm(grad_1)) > 1e-3
    for m, (loss, grad, sums) in results.items():
        np.testing.assert_allclose(loss, loss_1, rtol=1e-5, atol=1e-6, err_msg=f"M={m}")
        np.testing.assert_allclose(grad, grad_1, rtol=1e-5, atol=1e-6, err_msg=f"M={m}")
        metrics, metrics_1 = finalize_metrics(sums), finalize_metrics(sums_1)
        # By definition the top-20% entropy is taken per micro-batch (losses.top_entropy_sums).
        for key in set(metrics_1) - {"policy/entropy_top20"}:
            np.testing.assert_allclose(metrics[key], metrics_1[key], rtol=1e-5, err_msg=key)


def test_split_microbatches_is_strided():
    x = jnp.arange(8)
    np.testing.assert_array_equal(split_microbatches(x, 4), [[0, 4], [1, 5], [2, 6], [3, 7]])
    with pytest.raises(ValueError, match="not divisible into 3 micro-batches"):
        split_microbatches(x, 3)


def test_split_microbatches_keeps_runs_of_rows_together():
    x = jnp.arange(12)  # 6 prompts x 2 rows
    runs = split_microbatches(x, 3, run=2)
    np.testing.assert_array_equal(runs, [[0, 1, 6, 7], [2, 3, 8, 9], [4, 5, 10, 11]])
    np.testing.assert_array_equal(merge_microbatches(runs, run=2), x)
    np.testing.assert_array_equal(merge_microbatches(split_microbatches(x, 2), run=1), x)
    with pytest.raises(ValueError, match="runs of 2"):
        split_microbatches(jnp.arange(10), 2, run=2)


@pytest.mark.parametrize(
    "rows, group, m, shards, expected",
    [
        (64, 8, 2, 1, (8, 8)),  # 8 prompts: 4 whole prompts per micro-batch
        (64, 8, 4, 2, (8, 8)),  # 4 prompts per device, one per micro-batch
        (64, 8, 4, 4, (1, 2)),  # 2 prompts per device do not split in 4: G / M rows
        (24, 8, 2, 1, (1, 4)),  # 3 prompts do not split in 2
        (18, 6, 4, 1, (1, 1)),  # 3 prompts, nor 6 rows of one, split in 4: no sharing
        (16, 4, 1, 2, (4, 4)),  # one micro-batch: whole prompts
    ],
)
def test_microbatch_layout(rows, group, m, shards, expected):
    layout = microbatch_layout(rows, group, m, shards)
    assert (layout.run, layout.rows_per_prompt) == expected
    assert layout.num_microbatches == m


def test_registry_and_normalizers():
    assert get_policy_loss("dapo").aggregation == get_policy_loss("bnpo").aggregation
    with pytest.raises(ValueError, match=r"rl.loss_type: unknown loss 'ppo'; choose one of"):
        get_policy_loss("ppo")
    mask = jnp.asarray(MASK)
    assert float(loss_normalizer(mask, make_cfg("grpo"))) == 6
    assert float(loss_normalizer(mask, make_cfg("gspo"))) == 6
    assert float(loss_normalizer(mask, make_cfg("dapo"))) == MASK.sum()
    assert float(loss_normalizer(mask, make_cfg("dr_grpo"))) == 6 * MAX_LEN


def test_beta_without_reference_raises():
    with pytest.raises(ValueError, match="needs the reference logprobs"):
        run_loss(make_cfg("grpo", beta=0.1), ref=None)


@pytest.mark.parametrize(
    "field,value,key",
    [
        ("loss_type", "ppo", "rl.loss_type"),
        ("eps_low", 0.0, "rl.eps_low"),
        ("eps_low", 1.0, "rl.eps_low"),
        ("eps_high", 0.0, "rl.eps_high"),
        ("dual_clip", 1.0, "rl.dual_clip"),
        ("beta", -0.1, "rl.beta"),
        ("kl_estimator", "k4", "rl.kl_estimator"),
        ("max_completion_len", 0, "rl.max_completion_len"),
    ],
)
def test_config_validation_names_the_key(field, value, key):
    with pytest.raises(ValueError, match=key):
        dataclasses.replace(make_cfg("grpo"), **{field: value})
