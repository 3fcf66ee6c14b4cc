"""LoRA trees: targets, initialization, scaling, merging into the base for export."""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_rl import LORA, VOCAB, fast_compile, nonzero_lora, tiny_model

from rlvr_jax.models import left_padded_positions
from rlvr_jax.models.lora import LoraConfig, init_lora, lora_scale, lora_target_paths, merge_lora

TOKENS = np.array([[0, 0, 5, 9, 11, 3, 20], [4, 4, 30, 2, 17, 1, 8]], np.int32)
MASK = np.array([[0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]], np.int32)


@pytest.fixture(autouse=True, scope="module")
def _fast_compile():
    with fast_compile():
        yield


@functools.partial(jax.jit, static_argnums=0)
def forward(model, variables):
    return model.apply(variables, TOKENS, left_padded_positions(MASK), MASK)[0]


def test_targets_select_projections_by_name():
    _, params = tiny_model(num_layers=2)
    cfg = dataclasses.replace(LORA, targets=("q", "v", "down"))
    paths = lora_target_paths(params, cfg.targets)
    assert paths == [
        (f"layers_{i}", module, proj)
        for i in range(2)
        for module, proj in (("attn", "q_proj"), ("attn", "v_proj"), ("mlp", "down_proj"))
    ]
    lora = init_lora(params, cfg, jax.random.key(0))
    assert set(lora["layers_1"]["attn"]) == {"q_proj", "v_proj"}
    assert set(lora["layers_1"]["mlp"]) == {"down_proj"}
    q = lora["layers_0"]["attn"]["q_proj"]
    assert q["a"].shape == (28, 3) and q["b"].shape == (3, 24)
    assert lora["layers_0"]["mlp"]["down_proj"]["a"].shape == (37, 3)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(lora))


def test_init_b_zero_a_scaled_normal_and_works_on_abstract_params():
    _, params = tiny_model()
    cfg = dataclasses.replace(LORA, rank=64)
    lora = init_lora(params, cfg, jax.random.key(0))
    for path in lora_target_paths(params, cfg.targets):
        node = lora
        for name in path:
            node = node[name]
        assert np.all(np.asarray(node["b"]) == 0.0)
        d_in = node["a"].shape[0]
        # a ~ N(0, 1 / (3 d_in)): the sample std of d_in * 64 draws is within ~10%.
        np.testing.assert_allclose(np.std(np.asarray(node["a"])), (3 * d_in) ** -0.5, rtol=0.1)
    abstract = jax.eval_shape(lambda p: init_lora(p, cfg, jax.random.key(0)), params)
    assert jax.tree.map(lambda s: s.shape, abstract) == jax.tree.map(lambda x: x.shape, lora)


def test_zero_b_forward_is_exactly_the_base():
    model, params = tiny_model()
    lora = init_lora(params, LORA, jax.random.key(0))
    np.testing.assert_array_equal(
        forward(model, {"params": params, "lora": lora}), forward(model, {"params": params})
    )


@pytest.mark.parametrize("rslora", [False, True])
def test_merge_gives_the_adapted_logits(rslora):
    cfg = dataclasses.replace(LORA, rslora=rslora)
    model, params = tiny_model(cfg)
    lora = nonzero_lora(params, cfg)
    adapted = forward(model, {"params": params, "lora": lora})
    assert float(jnp.max(jnp.abs(adapted - forward(model, {"params": params})))) > 1e-2
    merged = merge_lora(params, lora, lora_scale(cfg))
    np.testing.assert_allclose(forward(model, {"params": merged}), adapted, atol=1e-5)
    # Inputs untouched; biases and non-targeted leaves carried over as they were.
    q = params["layers_0"]["attn"]["q_proj"]
    assert merged["layers_0"]["attn"]["q_proj"]["bias"] is q["bias"]
    assert merged["embed"] is params["embed"]
    assert not np.array_equal(merged["layers_0"]["attn"]["q_proj"]["kernel"], q["kernel"])


def test_merge_keeps_the_base_dtype():
    _, params = tiny_model()
    params16 = jax.tree.map(lambda x: x.astype(jnp.bfloat16), params)
    merged = merge_lora(params16, nonzero_lora(params), lora_scale(LORA))
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(merged))


def test_merge_rejects_paths_not_in_the_params():
    _, params = tiny_model()
    lora = {"layers_9": {"attn": {"q_proj": {"a": jnp.zeros((28, 3)), "b": jnp.zeros((3, 24))}}}}
    with pytest.raises(ValueError, match="layers_9 is not in the params"):
        merge_lora(params, lora, 1.0)


def test_rslora_scale():
    assert lora_scale(LoraConfig(rank=16, alpha=32.0, targets=("q",), rslora=False)) == 2.0
    assert lora_scale(LoraConfig(rank=16, alpha=32.0, targets=("q",), rslora=True)) == 8.0
    assert lora_scale(LoraConfig(rank=3, alpha=6.0, targets=("q",), rslora=True)) == pytest.approx(
        6.0 / math.sqrt(3)
    )


@pytest.mark.parametrize(
    "fields, match",
    [
        (dict(rank=0), "lora.rank"),
        (dict(alpha=0.0), "lora.alpha"),
        (dict(targets=()), "lora.targets is empty"),
        (dict(targets=("q", "qkv")), r"unknown target\(s\) \['qkv'\]; choose from \['q', 'k'"),
        (dict(targets=("q", "q")), "duplicates"),
    ],
)
def test_config_validation_names_the_key(fields, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(LORA, **fields)


def test_target_matching_nothing_is_an_error():
    params = {"embed": {"embedding": jnp.zeros((VOCAB, 28))}}
    with pytest.raises(ValueError, match="match no kernel"):
        lora_target_paths(params, ("q",))
