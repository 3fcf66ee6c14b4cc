"""Weight-only quantization of the frozen base: int8 and NF4 round trips within their
bounds, quantized matmuls equal to the dequantized-weights matmul, LoRA gradients through
a quantized base equal to those through its dequantized copy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_rl import LORA, host_batch, nonzero_lora, tiny_config

from rlvr_jax.models import Decoder
from rlvr_jax.models.lora import init_lora, lora_scale
from rlvr_jax.models.quantization import (
    NF4_LEVELS,
    QuantizationConfig,
    QuantizedKernel,
    dequantize_params,
    kernel_bytes,
    quantize_int8,
    quantize_nf4,
    quantize_params,
)
from rlvr_jax.rl.policy_logprobs import completion_logprobs

W = np.random.default_rng(0).normal(0.0, 0.02, size=(128, 48)).astype(np.float32)
W[:, 5] = 0.0  # an all-zero column must not divide by zero


def test_int8_round_trip_is_within_half_a_step():
    q = quantize_int8(W)
    assert q.codes.dtype == jnp.int8 and q.scales.shape == (48,)
    error = np.abs(np.asarray(q.dequantize()) - W)
    assert np.all(error <= np.asarray(q.scales)[None, :] / 2 + 1e-8)
    assert np.all(np.asarray(q.dequantize())[:, 5] == 0.0)


@pytest.mark.parametrize("double_quant", [False, True])
def test_nf4_round_trip_is_within_half_the_widest_level_gap(double_quant):
    q = quantize_nf4(W, block_size=64, double_quant=double_quant)
    assert q.codes.dtype == jnp.uint8 and q.codes.shape == (64, 48)
    deq = np.asarray(q.dequantize())
    blocks = np.abs(W).reshape(2, 64, 48).max(axis=1)  # the exact absmax per block
    if double_quant:  # the stored absmax is within half a uint8 step of the exact one
        step = blocks.max(axis=0) / 255
        blocks = blocks + step / 2
    bound = np.repeat(blocks, 64, axis=0) * np.max(np.diff(NF4_LEVELS)) / 2
    assert np.all(np.abs(deq - W) <= bound + 1e-7)
    # The round trip is a fixed point: quantizing the dequantized kernel changes nothing.
    again = quantize_nf4(deq, block_size=64, double_quant=False)
    np.testing.assert_allclose(np.asarray(again.dequantize()), deq, rtol=1e-6, atol=1e-9)


def test_nf4_is_at_most_a_fifth_of_float32():
    params = {"layers_0": {"mlp": {"up_proj": {"kernel": jnp.asarray(W)}}}}
    fp32 = kernel_bytes(params)
    for double_quant, ratio in ((False, 0.141), (True, 0.133)):
        cfg = QuantizationConfig(format="nf4", block_size=64, double_quant=double_quant)
        quantized = kernel_bytes(quantize_params(params, cfg))
        assert quantized / fp32 <= 0.2
        assert quantized / fp32 == pytest.approx(ratio, abs=0.005)
    int8 = kernel_bytes(quantize_params(params, QuantizationConfig("int8", 64, False)))
    assert int8 / fp32 == pytest.approx(0.25 + 1 / 128, abs=1e-3)


def even_model():
    """The tiny decoder with dims a 4-row NF4 block divides (28 and 36)."""
    cfg = tiny_config(intermediate_size=36, num_layers=2, layer_windows=(None, None))
    model = Decoder(cfg, lora_scale=lora_scale(LORA))
    dummy = jnp.zeros((1, 4), jnp.int32)
    params = model.init(jax.random.key(0), dummy, dummy, dummy)["params"]
    return model, params


@pytest.mark.parametrize("fmt", ["int8", "nf4"])
def test_quantized_base_equals_its_dequantized_copy(fmt):
    model, params = even_model()
    quantized = quantize_params(params, QuantizationConfig(fmt, 4, fmt == "nf4"))
    kernel = quantized["layers_0"]["attn"]["q_proj"]["kernel"]
    assert isinstance(kernel, QuantizedKernel) and kernel.shape == (28, 24)
    assert not isinstance(quantized["embed"]["embedding"], QuantizedKernel)  # kept float
    dequantized = dequantize_params(quantized)
    lora = nonzero_lora(params)
    assert jax.tree.structure(init_lora(quantized, LORA, jax.random.key(0))) == (
        jax.tree.structure(lora)
    )
    batch = host_batch(group=4)
    inputs = [batch[k] for k in ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask")]

    def loss(lora, base):
        logp, _ = completion_logprobs(model, {"params": base, "lora": lora}, *inputs)
        return jnp.sum(logp * batch["advantages"][:, None])

    grad = jax.jit(jax.value_and_grad(loss))
    (value_q, grads_q), (value_d, grads_d) = grad(lora, quantized), grad(lora, dequantized)
    np.testing.assert_allclose(value_q, value_d, rtol=1e-6)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), grads_q, grads_d
    )
    # ... and the quantized model is a close copy of the float one.
    value_f, _ = grad(lora, params)
    assert abs(float(value_q) - float(value_f)) < (0.01 if fmt == "int8" else 0.1) * abs(
        float(value_f)
    )


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="model.quantization.format"):
        QuantizationConfig("nf8", 64, False)
    with pytest.raises(ValueError, match="model.quantization.block_size"):
        QuantizationConfig("nf4", 63, False)
    with pytest.raises(ValueError, match="does not divide"):
        quantize_nf4(W[:100], 64, False)


@pytest.mark.parametrize("fmt", ["int8", "nf4"])
def test_tiny_run_on_a_quantized_base_trains_and_exports_float(fmt, tmp_path):
    from safetensors.numpy import load_file
    from test_pipeline import read_jsonl, tiny_config

    from rlvr_jax.train import train_and_evaluate

    config = tiny_config(
        max_steps=2,
        **{
            "model.quantization.format": fmt,
            "model.quantization.block_size": 8,
            "eval.every_steps": 0,
            "observers.tensorboard": False,
        },
    )
    train_and_evaluate(config, tmp_path)
    train = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if "loss" in r]
    assert len(train) == 2 and all(np.isfinite(r["loss"]) for r in train)
    merged = load_file(str(tmp_path / "export" / "merged" / "model.safetensors"))
    q_proj = next(v for k, v in merged.items() if k.endswith("layers.0.self_attn.q_proj.weight"))
    assert q_proj.dtype == np.float32  # dequantized, LoRA folded in: transformers loads it
    assert (tmp_path / "export" / "adapter" / "adapter_model.safetensors").is_file()


def test_full_fine_tuning_refuses_a_quantized_base():
    from test_pipeline import tiny_config

    from rlvr_jax.config import ExperimentConfig
    from rlvr_jax.config_builder import ConfigError

    config = tiny_config(**{"model.quantization.format": "int8", "rl.trainable": "full"})
    with pytest.raises(ConfigError, match="model.quantization.format"):
        ExperimentConfig.from_config_dict(config)
