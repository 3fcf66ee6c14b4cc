"""The train step on 8 fake CPU devices gives the numbers of a 1-device run.

A subprocess (the device count is fixed when JAX starts) runs the same steps on three
meshes of the same 8 devices: one device alone, data=8, and data=2 x fsdp=4, and saves every
output to an .npz; this test compares them. LoRA mode: scorer (mu = 2, beta > 0) then a
step with SGD at lr 1 (new = old - grad, so the update *is* the gradient). Full fine-tuning:
AdamW, the params and the moments sharded over fsdp.
"""

import pathlib
import textwrap

import numpy as np
import pytest
from fake_devices import run_on_fake_devices

REPO = pathlib.Path(__file__).resolve().parents[1]
MESHES = ("1x1", "8x1", "2x4")

SCRIPT = textwrap.dedent(
    """
    import sys
    import jax, numpy as np, optax
    jax.config.update("jax_disable_most_optimizations", True)
    from tiny_rl import host_batch, loss_config, nonzero_lora, optim_config, tiny_model
    from rlvr_jax.optim import make_optimizer, make_schedule
    from rlvr_jax.parallel import MeshConfig, make_mesh, shard_batch
    from rlvr_jax.rl.train_state import init_train_state
    from rlvr_jax.rl.train_step import TrainStepConfig, make_rollout_scorer, make_train_step
    from rlvr_jax.policy import Policy
    from tiny_rl import LORA

    assert jax.device_count() == 8, jax.devices()
    model, params = tiny_model()
    lora = nonzero_lora(params)
    sgd = optax.sgd(1.0)
    # Adam's first update is lr * g / (|g| + eps): at eps 1e-8 a gradient near 1e-8 turns
    # the devices' summation order into a visible parameter difference (1.3e-6 on an AMD
    # host); eps 1e-3 keeps the comparison about the sharding, not Adam's conditioning.
    adam_cfg = optim_config(1e-2, eps=1e-3)
    adam = make_optimizer(adam_cfg)
    out = {}

    def save(prefix, tree):
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
            out[prefix + jax.tree_util.keystr(path, simple=True, separator="/")] = np.asarray(leaf)

    for name, (data, fsdp) in {"1x1": (1, 1), "8x1": (8, 1), "2x4": (2, 4)}.items():
        devices = jax.devices()[:1] if name == "1x1" else jax.devices()
        mesh = make_mesh(MeshConfig(data=data, fsdp=fsdp), devices)
        batch = shard_batch(host_batch(), mesh)

        cfg, loss_cfg = TrainStepConfig(2, 2, group_size=1), loss_config("grpo", beta=0.04)
        policy = Policy.create(model, params, "lora", LORA, mesh, has_reference=True)
        state = init_train_state(lora, sgd, jax.random.key(0), mesh)
        scorer = make_rollout_scorer(policy, loss_cfg, cfg, state)
        step = make_train_step(policy, loss_cfg, cfg, sgd, lambda s: 1.0, state)
        scored = scorer(state, batch)
        save(f"{name}/scored/", {k: scored[k] for k in ("old_logprobs", "ref_logprobs")})
        state, metrics = step(state, scored)
        save(f"{name}/lora/", state.trainable)
        save(f"{name}/lora_metrics/", metrics)

        cfg, loss_cfg = TrainStepConfig(2, 1, group_size=1), loss_config("dapo")
        policy = Policy.create(model, params, "full", LORA, mesh, has_reference=False)
        state = init_train_state(policy.init_trainable(None), adam, jax.random.key(0), mesh)
        embeddings = [  # the params and both Adam moments
            leaf
            for path, leaf in jax.tree_util.tree_leaves_with_path(state)
            if jax.tree_util.keystr(path).endswith("['embed']['embedding']")
        ]
        assert len(embeddings) == 3, len(embeddings)
        for leaf in embeddings:
            assert leaf.sharding.shard_shape(leaf.shape) == (41, 28 // fsdp), (name, leaf.sharding)
        schedule = make_schedule(adam_cfg)
        step = make_train_step(policy, loss_cfg, cfg, adam, schedule, state)
        state, metrics = step(state, batch)
        save(f"{name}/full/", state.trainable)
        save(f"{name}/full_metrics/", metrics)

    np.savez(sys.argv[1], **out)
    print("OK")
    """
)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("devices") / "results.npz"
    run_on_fake_devices(SCRIPT, str(out), timeout=300)
    with np.load(out) as npz:
        return dict(npz)


@pytest.mark.parametrize("mesh", ["8x1", "2x4"])
@pytest.mark.parametrize("part", ["scored", "lora", "lora_metrics", "full", "full_metrics"])
def test_same_numbers_as_one_device(results, mesh, part):
    reference = {k.split("/", 2)[2]: v for k, v in results.items() if k.startswith(f"1x1/{part}/")}
    sharded = {k.split("/", 2)[2]: v for k, v in results.items() if k.startswith(f"{mesh}/{part}/")}
    assert reference and sharded.keys() == reference.keys()
    for key, want in reference.items():
        np.testing.assert_allclose(
            sharded[key], want, rtol=1e-5, atol=1e-6, err_msg=f"{mesh} {part}/{key}"
        )
    if part == "lora_metrics":
        assert reference["kl/mean"] > 0 and reference["policy/clip_frac_high"] >= 0
