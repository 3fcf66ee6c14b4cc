"""A quantized base under FSDP: its codes and scales are sharded like the float kernel
they stand for (not replicated), stacked layers keep their layer axis whole, and the
sharded forward equals the one-device forward."""

import jax
import pytest
from fake_devices import run_on_fake_devices
from jax.sharding import PartitionSpec as P
from tiny_rl import tiny_config

from rlvr_jax.models import Decoder
from rlvr_jax.models.layer_stack import stack_layers
from rlvr_jax.models.quantization import QuantizationConfig, QuantizedKernel, quantize_params
from rlvr_jax.parallel import param_partition_specs

CFG = dict(hidden_size=32, intermediate_size=64, num_heads=4, num_kv_heads=2, head_dim=8)


def _params():
    cfg = tiny_config(**CFG)
    dummy = jax.numpy.zeros((1, 4), jax.numpy.int32)
    return Decoder(cfg).init(jax.random.key(0), dummy, dummy, dummy)["params"]


@pytest.mark.parametrize("fmt,double", [("int8", False), ("nf4", False), ("nf4", True)])
def test_quantized_leaves_follow_the_kernel_spec(fmt, double):
    params = quantize_params(_params(), QuantizationConfig(fmt, 16, double))
    axes = {"data": 1, "fsdp": 2}
    specs = param_partition_specs(params, axes)
    q, down = (
        specs["layers_0"]["attn"]["q_proj"]["kernel"],
        specs["layers_0"]["mlp"]["down_proj"]["kernel"],
    )
    assert isinstance(q, QuantizedKernel)
    assert q.codes == P("fsdp", None) and down.codes == P(None, "fsdp")
    if fmt == "int8":  # per output column: [out]
        assert q.scales == P(None) and down.scales == P("fsdp")
    else:  # per block of rows and column: [in / bs, out]
        assert q.scales == P("fsdp", None) and down.scales == P(None, "fsdp")
        assert (q.scale_scales is None) == (not double)
    stacked = param_partition_specs(stack_layers(params), axes)
    assert stacked["layers"]["attn"]["q_proj"]["kernel"].codes == P(None, "fsdp", None)


def test_q4_1_leaves_are_out_major():
    kernel = QuantizedKernel(
        codes=jax.ShapeDtypeStruct((64, 16), "uint8"),  # [out, in / 2]
        scales=jax.ShapeDtypeStruct((64, 1), "float32"),  # [out, in / 32]
        scale_scales=None,
        offsets=jax.ShapeDtypeStruct((64, 1), "float32"),
        format="q4_1",
        shape=(32, 64),
    )
    spec = param_partition_specs(
        {"layers_0": {"mlp": {"gate_proj": {"kernel": kernel}}}}, {"data": 1, "fsdp": 2}
    )
    got = spec["layers_0"]["mlp"]["gate_proj"]["kernel"]
    assert got.codes == P(None, "fsdp")  # in / 2 = 16 rows of the [D, F] kernel's 'fsdp' dim
    assert got.scales == P(None, None)  # in / 32 = 1: not divisible, replicated


SCRIPT = r"""
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import PartitionSpec as P
from tiny_rl import LORA, nonzero_lora, tiny_config
from rlvr_jax.models import Decoder
from rlvr_jax.models.quantization import QuantizationConfig, quantize_params
from rlvr_jax.parallel import MeshConfig, make_mesh
from rlvr_jax.policy import Policy

CFG = dict(hidden_size=32, intermediate_size=64, num_heads=4, num_kv_heads=2, head_dim=8)
cfg = tiny_config(**CFG)
dummy = jnp.zeros((1, 4), jnp.int32)
params = Decoder(cfg).init(jax.random.key(0), dummy, dummy, dummy)["params"]
params = quantize_params(params, QuantizationConfig("nf4", 16, True))
lora = nonzero_lora(params)
tokens = jnp.asarray(np.random.default_rng(0).integers(0, cfg.vocab_size, (4, 9)), jnp.int32)
positions = jnp.broadcast_to(jnp.arange(9), (4, 9))
mask = jnp.ones((4, 9), jnp.int32)
one = make_mesh(MeshConfig(data=1, fsdp=1), jax.devices()[:1])
mesh = make_mesh(MeshConfig(data=2, fsdp=2))
for scan in (False, True):
    model = Decoder(cfg, scan_layers=scan)
    out = {}
    for m in (one, mesh):
        policy = Policy.create(model, params, "lora", LORA, m, has_reference=False)
        variables = policy.live_variables(lora)
        logits, _ = jax.jit(policy.model.apply)(variables, tokens, positions, mask)
        out[m.size] = np.asarray(logits)
    layer = policy.base["layers"] if scan else policy.base["layers_0"]
    codes = layer["attn"]["q_proj"]["kernel"].codes
    want = P(None, "fsdp", None) if scan else P("fsdp", None)
    assert codes.sharding.spec == want, (scan, codes.sharding.spec)
    np.testing.assert_allclose(out[4], out[1], atol=1e-5)
print("OK")
"""


def test_sharded_quantized_forward_equals_one_device():
    run_on_fake_devices(SCRIPT, devices=4, timeout=240)
