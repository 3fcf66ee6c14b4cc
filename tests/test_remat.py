"""rl.remat recomputes layers in the backward: the same loss and gradients (1e-6), for the
plain forward and the shared-prompt forward (its KV cache goes through the remat layers);
the `save_*` policies keep exactly the activations they name."""

import importlib.util
import re
from pathlib import Path

import jax
import numpy as np
import pytest
from tiny_rl import LORA, fast_compile, host_batch, loss_config, nonzero_lora, tiny_model

from rlvr_jax.models.decoder import REMAT_POLICIES, check_remat
from rlvr_jax.parallel import MeshConfig, make_mesh
from rlvr_jax.policy import Policy
from rlvr_jax.rl.train_step import TrainStepConfig, loss_and_grads


@pytest.fixture(autouse=True, scope="module")
def _fast_compile():
    with fast_compile():
        yield


@pytest.mark.parametrize("group", [1, 4])
def test_remat_gives_the_same_loss_and_gradients(group):
    model, params = tiny_model(num_layers=2)
    mesh = make_mesh(MeshConfig(data=1, fsdp=1), jax.devices()[:1])
    policy = Policy.create(model, params, "lora", LORA, mesh, has_reference=True)
    lora = nonzero_lora(params)
    batch = jax.tree.map(jax.numpy.asarray, host_batch(group=group))
    results, remats = {}, {}
    for remat in REMAT_POLICIES:
        step_cfg = TrainStepConfig(
            num_microbatches=1, num_iterations=2, group_size=group, remat=remat
        )

        @jax.jit
        def run(lora, batch, step_cfg=step_cfg, remat=remat):
            return loss_and_grads(
                policy.frozen,
                lora,
                batch,
                policy=policy.for_training(remat),
                loss_cfg=loss_config("grpo", beta=0.04),
                step_cfg=step_cfg,
            )

        results[remat] = run(lora, batch)
        remats[remat] = str(jax.make_jaxpr(run)(lora, batch)).count("remat")
    # The layers are wrapped (the LM head's chunks are rematerialized in every mode).
    recomputing = [r for r in REMAT_POLICIES if r != "none"]
    assert all(remats[r] > remats["none"] for r in recomputing), remats
    loss, grads, _ = results["none"]
    assert float(optax_norm(grads)) > 1e-3
    for remat in recomputing:
        other_loss, other_grads, _ = results[remat]
        np.testing.assert_allclose(other_loss, loss, rtol=1e-6, atol=1e-7, err_msg=remat)
        jax.tree.map(
            lambda a, b, remat=remat: np.testing.assert_allclose(
                a, b, rtol=1e-6, atol=1e-7, err_msg=remat
            ),
            other_grads,
            grads,
        )


def optax_norm(tree):
    return jax.numpy.sqrt(sum(jax.numpy.sum(x**2) for x in jax.tree.leaves(tree)))


def test_for_training_keeps_the_sampler_model_and_the_params():
    model, params = tiny_model()
    mesh = make_mesh(MeshConfig(data=1, fsdp=1), jax.devices()[:1])
    policy = Policy.create(model, params, "lora", LORA, mesh, has_reference=False)
    trained = policy.for_training("full")
    assert policy.model.remat == "none" and trained.model.remat == "full"
    assert trained.base is policy.base and policy.for_training("none") is policy
    # Remat recomputes one layer at a time only under a scan (Decoder.remat).
    assert not policy.model.scan_layers and trained.model.scan_layers


def test_remat_of_unrolled_layers_is_refused():
    model, params = tiny_model()
    tokens = jax.numpy.zeros((1, 3), jax.numpy.int32)
    with pytest.raises(ValueError, match="scan_layers"):
        model.clone(remat="full").apply({"params": params}, tokens, tokens, tokens + 1)


def test_bench_grpo_offers_every_policy():
    """scripts/bench_grpo.py lists the policies without importing JAX; the lists agree."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "bench_grpo.py"
    spec = importlib.util.spec_from_file_location("bench_grpo", script)
    bench_grpo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_grpo)
    assert sorted(bench_grpo.REMAT_CHOICES) == sorted(REMAT_POLICIES)


def test_unknown_remat_names_the_key():
    with pytest.raises(ValueError, match="rl.remat"):
        check_remat("some")
    with pytest.raises(ValueError, match="rl.remat"):
        TrainStepConfig(num_microbatches=1, num_iterations=1, group_size=1, remat="some")


@pytest.mark.parametrize(
    "remat, kept",
    [
        ("full", []),
        ("save_attention", ["attention"]),
        ("save_attention_mlp", ["attention", "mlp", "mlp"]),
        ("save_qkv_attention_mlp", ["q", "k", "v", "attention", "mlp", "mlp"]),
    ],
)
def test_named_policies_keep_what_they_name(remat, kept, capsys):
    """The scan's per-layer residuals [L, B, T, ...]: the layer inputs under full remat,
    plus the attention output (N * H wide), the MLP's gate and up (F wide) and the query,
    key and value ([N, H], [K, H]) as named."""
    model, params = tiny_model(num_layers=2)
    model = model.clone(scan_layers=True, remat=remat)
    cfg = model.cfg
    tokens = jax.numpy.ones((2, 5), jax.numpy.int32)

    def loss(params):
        out = model.apply({"params": params}, tokens, tokens, tokens, method="hidden_states")
        return jax.numpy.sum(out[0] ** 2)

    jax.ad_checkpoint.print_saved_residuals(loss, params)
    saved = re.findall(r"f32\[2,2,5,([\d,]+)\] output of scan", capsys.readouterr().out)
    N, K, H = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
    shape = {
        "attention": f"{N * H}",
        "mlp": f"{cfg.intermediate_size}",
        "q": f"{N},{H}",
        "k": f"{K},{H}",
        "v": f"{K},{H}",
    }
    assert sorted(saved) == sorted([f"{cfg.hidden_size}"] + [shape[k] for k in kept])
