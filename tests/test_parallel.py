"""Mesh, sharding rules, batch sharding and distributed init.

Rules and config are checked in-process; the mesh itself on 8 fake CPU devices in one
subprocess (the device count is fixed when JAX starts).
"""

import logging
import pathlib
import textwrap

import jax
import jax.numpy as jnp
import pytest
from fake_devices import run_on_fake_devices
from jax.sharding import PartitionSpec as P

from rlvr_jax import parallel
from rlvr_jax.parallel import MeshConfig, detect_cluster, param_partition_specs

REPO = pathlib.Path(__file__).resolve().parents[1]
D, V, NH, KH, H, F, R = 16, 40, 24, 8, 4, 48, 2


def model_like_tree(d=D):
    """The lead's param layout (kernels [in, out]) plus a LoRA tree, as ShapeDtypeStructs."""

    def s(*shape):
        return jax.ShapeDtypeStruct(shape, jnp.float32)

    layer = {
        "attn": {
            "q_proj": {"kernel": s(d, NH), "bias": s(NH)},
            "k_proj": {"kernel": s(d, KH), "bias": s(KH)},
            "v_proj": {"kernel": s(d, KH), "bias": s(KH)},
            "o_proj": {"kernel": s(NH, d)},
            "q_norm": {"scale": s(H)},
            "k_norm": {"scale": s(H)},
        },
        "input_norm": {"scale": s(d)},
        "pre_mlp_norm": {"scale": s(d)},
        "mlp": {
            "gate_proj": {"kernel": s(d, F)},
            "up_proj": {"kernel": s(d, F)},
            "down_proj": {"kernel": s(F, d)},
        },
    }
    params = {
        "embed": {"embedding": s(V, d)},
        "layers_0": layer,
        "layers_1": layer,
        "final_norm": {"scale": s(d)},
        "lm_head": {"kernel": s(d, V)},
    }
    lora = {"layers_0": {"attn": {"q_proj": {"a": s(d, R), "b": s(R, NH)}}}}
    return params, lora


EXPECTED = {
    "embed/embedding": P(None, "fsdp"),
    "layers_1/attn/q_proj/kernel": P("fsdp", None),
    "layers_1/attn/k_proj/kernel": P("fsdp", None),
    "layers_1/attn/q_proj/bias": P(),
    "layers_1/attn/o_proj/kernel": P(None, "fsdp"),
    "layers_1/attn/q_norm/scale": P(),
    "layers_1/input_norm/scale": P(),
    "layers_1/mlp/gate_proj/kernel": P("fsdp", None),
    "layers_1/mlp/up_proj/kernel": P("fsdp", None),
    "layers_1/mlp/down_proj/kernel": P(None, "fsdp"),
    "final_norm/scale": P(),
    "lm_head/kernel": P("fsdp", None),
}


def flat_specs(tree):
    leaves = jax.tree_util.tree_leaves_with_path(tree, is_leaf=lambda x: isinstance(x, P))
    return {jax.tree_util.keystr(k, simple=True, separator="/"): v for k, v in leaves}


def test_param_rules_give_intended_specs():
    params, lora = model_like_tree()
    specs = flat_specs(param_partition_specs(params, {"data": 2, "fsdp": 4}))
    for path, spec in EXPECTED.items():
        assert specs[path] == spec, path
    lora_specs = flat_specs(param_partition_specs(lora, {"data": 2, "fsdp": 4}))
    assert set(lora_specs.values()) == {P()}
    nested = flat_specs(param_partition_specs({"params": params}, {"data": 2, "fsdp": 4}))
    assert nested["params/embed/embedding"] == P(None, "fsdp")
    assert nested["params/lm_head/kernel"] == P("fsdp", None)


def test_non_divisible_dims_fall_back_to_replicated(caplog):
    params, _ = model_like_tree(d=13)  # odd model dim: nothing divides it by 4
    with caplog.at_level(logging.WARNING, logger="rlvr_jax.parallel"):
        specs = flat_specs(param_partition_specs(params, {"data": 2, "fsdp": 4}))
    assert specs["embed/embedding"] == P(None, None)
    assert specs["lm_head/kernel"] == P(None, None)
    assert "replicated 16 param dims not divisible" in caplog.text
    assert "embed/embedding[1]=13 by fsdp=4" in caplog.text


def test_rule_longer_than_rank_is_an_error():
    rules = ((r".*", P("fsdp", None)),)
    with pytest.raises(ValueError, match="gives"):
        param_partition_specs({"x": jax.ShapeDtypeStruct((4,), jnp.float32)}, {"fsdp": 2}, rules)


@pytest.mark.parametrize(
    "data,fsdp,n,expected",
    [
        (8, 1, 8, (8, 1)),
        (2, 4, 8, (2, 4)),
        (-1, 4, 8, (2, 4)),
        (2, -1, 8, (2, 4)),
        (-1, 1, 1, (1, 1)),
    ],
)
def test_axis_sizes(data, fsdp, n, expected):
    assert MeshConfig(data=data, fsdp=fsdp).axis_sizes(n) == expected


@pytest.mark.parametrize(
    "data,fsdp,n,match",
    [
        (3, -1, 8, "mesh.data = 3 does not divide"),
        (-1, 3, 8, "mesh.fsdp = 3 does not divide"),
        (2, 2, 8, r"mesh.data \* mesh.fsdp = 2 \* 2 must equal the 8 devices"),
    ],
)
def test_axis_sizes_errors(data, fsdp, n, match):
    with pytest.raises(ValueError, match=match):
        MeshConfig(data=data, fsdp=fsdp).axis_sizes(n)


@pytest.mark.parametrize(
    "data,fsdp,match", [(0, 1, "mesh.data"), (1, -2, "mesh.fsdp"), (-1, -1, "both be -1")]
)
def test_mesh_config_validation(data, fsdp, match):
    with pytest.raises(ValueError, match=match):
        MeshConfig(data=data, fsdp=fsdp)


@pytest.mark.parametrize(
    "environ,expected",
    [
        ({}, None),
        ({"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234"}, "jax"),
        ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4"}, "slurm"),
        ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1"}, None),  # one task: single process
        ({"OMPI_MCA_orte_hnp_uri": "x", "OMPI_COMM_WORLD_SIZE": "2"}, "ompi"),
        ({"TPU_WORKER_HOSTNAMES": "host-0,host-1"}, "tpu"),
        ({"TPU_WORKER_HOSTNAMES": "localhost"}, None),
        ({"MEGASCALE_COORDINATOR_ADDRESS": "h0"}, "tpu"),
    ],
)
def test_detect_cluster(environ, expected):
    assert detect_cluster(environ) == expected


@pytest.mark.parametrize(
    "enabled,environ,called",
    [
        (False, {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4"}, False),
        (None, {}, False),
        (None, {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4"}, True),
        (True, {}, True),
    ],
)
def test_maybe_initialize_distributed(monkeypatch, enabled, environ, called):
    calls = []
    monkeypatch.setattr(jax.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: calls.append(kw))
    monkeypatch.setattr(jax.config, "update", lambda *a: None)  # keep this process's backend
    assert parallel.maybe_initialize_distributed(enabled, environ) is called
    assert len(calls) == int(called)
    if called:  # SLURM / explicit: JAX detects the rest itself
        assert calls[0] == dict(coordinator_address=None, num_processes=None, process_id=None)


def test_jax_environment_variables_reach_initialize(monkeypatch):
    """JAX_NUM_PROCESSES / JAX_PROCESS_ID are read here (jax.distributed does not read them:
    "Number of processes must be defined"); flags override the environment."""
    calls = []
    monkeypatch.setattr(jax.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: calls.append(kw))
    updates = []
    monkeypatch.setattr(jax.config, "update", lambda *a: updates.append(a))
    environ = {
        "JAX_COORDINATOR_ADDRESS": "127.0.0.1:1234",
        "JAX_NUM_PROCESSES": "2",
        "JAX_PROCESS_ID": "1",
    }
    assert parallel.maybe_initialize_distributed(None, environ)
    assert calls[-1] == dict(coordinator_address="127.0.0.1:1234", num_processes=2, process_id=1)
    assert ("jax_cpu_collectives_implementation", "gloo") in updates
    flags = parallel.ProcessGroup("10.0.0.1:99", None, 0)
    assert parallel.maybe_initialize_distributed(None, environ, flags)
    assert calls[-1] == dict(coordinator_address="10.0.0.1:99", num_processes=2, process_id=0)
    with pytest.raises(ValueError, match="without the process count and id"):
        parallel.maybe_initialize_distributed(None, {"JAX_COORDINATOR_ADDRESS": "h:1"})
    with pytest.raises(ValueError, match="JAX_NUM_PROCESSES='two'"):
        parallel.maybe_initialize_distributed(None, {**environ, "JAX_NUM_PROCESSES": "two"})
    with pytest.raises(ValueError, match=r"process id 2 not in \[0, 2\)"):
        parallel.maybe_initialize_distributed(None, {**environ, "JAX_PROCESS_ID": "2"})


EIGHT_DEVICE_SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import AxisType, PartitionSpec as P
    from rlvr_jax import parallel
    from rlvr_jax.parallel import MeshConfig, make_mesh
    from rlvr_jax.rl.losses import LossConfig, loss_normalizer, policy_loss
    from rlvr_jax.rl.microbatch import accumulate_gradients

    assert jax.device_count() == 8, jax.devices()
    for (d, f), shape in {(8, 1): (8, 1), (2, 4): (2, 4), (-1, 4): (2, 4), (2, -1): (2, 4),
                          (1, -1): (1, 8)}.items():
        mesh = make_mesh(MeshConfig(data=d, fsdp=f))
        assert mesh.axis_names == ("data", "fsdp"), mesh.axis_names
        assert tuple(mesh.devices.shape) == shape, (d, f, mesh.devices.shape)
        assert mesh.axis_types == (AxisType.Auto, AxisType.Auto), mesh.axis_types
    for d, f in ((3, -1), (2, 2)):
        try:
            make_mesh(MeshConfig(data=d, fsdp=f))
        except ValueError as e:
            assert "mesh." in str(e), e
        else:
            raise AssertionError(f"mesh {d}x{f} on 8 devices should fail")
    assert make_mesh(MeshConfig(data=2, fsdp=-1), jax.devices()[:4]).devices.shape == (2, 2)

    mesh = make_mesh(MeshConfig(data=2, fsdp=4))
    params = {"embed": {"embedding": jnp.ones((40, 16))},
              "layers_0": {"mlp": {"down_proj": {"kernel": jnp.ones((48, 16))}},
                           "input_norm": {"scale": jnp.ones((16,))}},
              "lm_head": {"kernel": jnp.ones((16, 40))}}
    placed = jax.device_put(params, parallel.param_shardings(params, mesh))
    shard = lambda x: x.sharding.shard_shape(x.shape)
    assert shard(placed["embed"]["embedding"]) == (40, 4)
    assert shard(placed["layers_0"]["mlp"]["down_proj"]["kernel"]) == (48, 4)
    assert shard(placed["layers_0"]["input_norm"]["scale"]) == (16,)
    assert shard(placed["lm_head"]["kernel"]) == (4, 40)

    # Batch over both axes: 16 rows -> 2 rows per device, each device its own rows.
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 7, size=16)
    host = {"base": rng.normal(size=(16, 6)).astype(np.float32),
            "old": np.log(rng.uniform(0.1, 0.9, size=(16, 6))).astype(np.float32),
            "adv": rng.normal(size=(16,)).astype(np.float32),
            "mask": (np.arange(6)[None] < lengths[:, None]).astype(np.float32)}
    batch = parallel.shard_batch(host, mesh)
    assert batch["mask"].sharding.spec == P(("data", "fsdp")), batch["mask"].sharding
    assert shard(batch["base"]) == (2, 6)
    assert len({s.device for s in batch["base"].addressable_shards}) == 8

    # Same numbers on 8 devices (jit over the mesh, 2 strided micro-batches) and on 1.
    cfg = LossConfig("dapo", 0.2, 0.28, 3.0, 0.0, "k3", 6)
    def run(b, theta):
        z = loss_normalizer(b["mask"], cfg)
        def loss_fn(th, mb):
            logp = jax.nn.log_sigmoid(mb["base"] * th[None, :])
            return policy_loss(logp, mb["old"], None, mb["adv"], mb["mask"], z, cfg)
        return accumulate_gradients(loss_fn, theta, b, 2)
    theta = jnp.linspace(-1.0, 1.0, 6)
    sharded = jax.jit(run)(batch, jax.device_put(theta, parallel.replicated(mesh)))
    single = jax.jit(run)(jax.device_put(host, jax.devices()[0]), theta)
    for a, b in zip(jax.tree.leaves(sharded), jax.tree.leaves(single)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    print("OK")
    """
)


def test_mesh_and_shardings_on_8_fake_devices():
    run_on_fake_devices(EIGHT_DEVICE_SCRIPT, timeout=120)
