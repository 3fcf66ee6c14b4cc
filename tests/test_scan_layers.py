"""`model.scan_layers`: the scanned decoder (one layer body under lax.scan over stacked
params) against the unrolled one, on every family (Gemma 3's per-layer windows and rope
included): logits within 1e-5, cached decode, greedy completions, LoRA, gradients with
every remat policy within 1e-6, and the stacked base through the policy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hf_reference import left_padded_batch, tiny_family
from tiny_rl import LORA, fast_compile, host_batch, loss_config, nonzero_lora, tiny_model

from rlvr_jax.models import Decoder, KVCache
from rlvr_jax.models.layer_stack import stack_layers, unstack_layers
from rlvr_jax.models.quantization import QuantizationConfig, quantize_params
from rlvr_jax.parallel import MeshConfig, make_mesh, param_partition_specs
from rlvr_jax.policy import Policy
from rlvr_jax.rl.train_step import TrainStepConfig, loss_and_grads
from rlvr_jax.sampling import SamplingConfig, SpecialTokens, generate

FAMILIES = ["llama", "qwen2", "qwen3", "gemma3"]


@pytest.fixture(autouse=True, scope="module")
def _fast_compile():
    with fast_compile():
        yield


@pytest.fixture(scope="module", params=FAMILIES)
def family(request, tmp_path_factory):
    return tiny_family(request.param, tmp_path_factory)


def _logits(model, variables, tokens, mask, positions, cache=None):
    logits, cache = model.apply(variables, tokens, positions, mask, cache)
    return np.asarray(logits), cache


def test_scanned_logits_equal_unrolled(family):
    name, cfg, params = family
    tokens, mask, positions = left_padded_batch()
    unrolled, _ = _logits(Decoder(cfg), {"params": params}, tokens, mask, positions)
    scanned_model = Decoder(cfg, scan_layers=True)
    for tree in (params, stack_layers(params)):  # per-layer params stacked per call, or once
        scanned, _ = _logits(scanned_model, {"params": tree}, tokens, mask, positions)
        np.testing.assert_allclose(scanned, unrolled, atol=1e-5, err_msg=name)


def test_scanned_cached_decode_equals_unrolled(family):
    name, cfg, params = family
    tokens, mask, positions = left_padded_batch(seed=1)
    B, T = tokens.shape
    out = {}
    for scan in (False, True):
        model = Decoder(cfg, scan_layers=scan)
        cache = KVCache.empty(cfg, B, num_slots=T + 3, dtype=jnp.float32, stacked=scan)
        variables = {"params": params}
        _, cache = _logits(model, variables, tokens[:, :-1], mask[:, :-1], positions[:, :-1], cache)
        step, cache = _logits(
            model, variables, tokens[:, -1:], mask[:, -1:], positions[:, -1:], cache
        )
        assert cache.stacked == scan and int(cache.end) == T
        out[scan] = step, np.asarray(jnp.stack(list(cache.k)) if not scan else cache.k)
    np.testing.assert_allclose(out[True][0], out[False][0], atol=1e-5, err_msg=name)
    np.testing.assert_allclose(out[True][1], out[False][1], atol=1e-5, err_msg=name)


def test_a_cache_of_the_other_layout_is_refused(family):
    _, cfg, params = family
    tokens, mask, positions = left_padded_batch()
    B, T = tokens.shape
    for scan in (False, True):
        cache = KVCache.empty(cfg, B, T, jnp.float32, stacked=not scan)
        with pytest.raises(ValueError, match="stacked KV cache"):
            Decoder(cfg, scan_layers=scan).apply({"params": params}, tokens, positions, mask, cache)


def test_scanned_greedy_completions_equal_unrolled(family):
    name, cfg, params = family
    sampling = SamplingConfig(
        num_samples=2,
        max_new_tokens=12,
        temperature=0.0,
        top_k=0,
        top_p=1.0,
        extra_stop_token_ids=(),
        prompt_buckets=(16,),
    )
    tokens = SpecialTokens(stop_token_ids=(1,), pad_token_id=0)
    prompts = [[5, 9, 13, 2], [7, 3, 11, 17, 19, 23], [4]]
    rng = jax.random.key(0)
    ids = {}
    for scan in (False, True):
        out = generate(
            Decoder(cfg, scan_layers=scan), {"params": params}, prompts, rng, sampling, tokens
        )
        ids[scan] = np.asarray(out.ids), np.asarray(out.logprobs)
    np.testing.assert_array_equal(ids[True][0], ids[False][0], err_msg=name)
    np.testing.assert_allclose(ids[True][1], ids[False][1], atol=1e-5, err_msg=name)


@pytest.mark.parametrize("remat", ["none", "full", "save_dots"])
def test_scanned_lora_loss_and_gradients_equal_unrolled(remat):
    model, params = tiny_model(num_layers=3)
    mesh = make_mesh(MeshConfig(data=1, fsdp=1), jax.devices()[:1])
    lora = nonzero_lora(params)
    batch = jax.tree.map(jnp.asarray, host_batch(group=4))
    step_cfg = TrainStepConfig(num_microbatches=1, num_iterations=2, group_size=4, remat=remat)
    results = {}
    for scan in (False, True):
        policy = Policy.create(
            model.clone(scan_layers=scan), params, "lora", LORA, mesh, has_reference=True
        )
        assert ("layers" in policy.base) == scan  # the base is stacked once, at creation

        @jax.jit
        def run(frozen, lora, batch, policy=policy):
            return loss_and_grads(
                frozen,
                lora,
                batch,
                policy=policy.for_training(remat),
                loss_cfg=loss_config("grpo", beta=0.04),
                step_cfg=step_cfg,
            )

        results[scan] = run(policy.frozen, lora, batch)
    (loss, grads, _), (scan_loss, scan_grads, _) = results[False], results[True]
    assert jax.tree.structure(grads) == jax.tree.structure(scan_grads)  # LoRA stays per layer
    np.testing.assert_allclose(scan_loss, loss, rtol=1e-6, atol=1e-7)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), scan_grads, grads
    )


def test_policy_with_a_stacked_base_inits_exports_and_shards_per_layer():
    model, params = tiny_model(num_layers=2)
    mesh = make_mesh(MeshConfig(data=1, fsdp=1), jax.devices()[:1])
    quantized = quantize_params(params, QuantizationConfig("int8", 64, False))
    plain = Policy.create(model, quantized, "lora", LORA, mesh, has_reference=False)
    scanned = Policy.create(
        model.clone(scan_layers=True), quantized, "lora", LORA, mesh, has_reference=False
    )
    rng = jax.random.key(3)
    lora, scan_lora = plain.init_trainable(rng), scanned.init_trainable(rng)
    jax.tree.map(np.testing.assert_array_equal, scan_lora, lora)  # same draws, same paths
    exported, _ = scanned.export_trees(lora)
    reference, _ = plain.export_trees(lora)
    jax.tree.map(np.testing.assert_array_equal, exported, reference)  # float, per layer
    specs = param_partition_specs(scanned.base, {"data": 1, "fsdp": 2})
    kernel_spec = specs["layers"]["mlp"]["down_proj"]["kernel"]
    assert kernel_spec.codes[0] is None  # the layer axis is never sharded


def test_stack_round_trip_and_bad_layer_keys():
    _, params = tiny_model(num_layers=3)
    stacked = stack_layers(params)
    assert stacked["layers"]["attn"]["q_proj"]["kernel"].shape[0] == 3
    jax.tree.map(np.testing.assert_array_equal, unstack_layers(stacked), params)
    assert stack_layers(stacked) is stacked
    with pytest.raises(ValueError, match="not 0..1"):
        stack_layers({"layers_0": {"w": jnp.ones(2)}, "layers_2": {"w": jnp.ones(2)}})


def test_full_mode_trains_a_stacked_copy_and_exports_it_per_layer():
    model, params = tiny_model(num_layers=2)
    mesh = make_mesh(MeshConfig(data=1, fsdp=1), jax.devices()[:1])
    policy = Policy.create(
        model.clone(scan_layers=True), params, "full", LORA, mesh, has_reference=True
    )
    trainable = policy.init_trainable(jax.random.key(0))
    assert "layers" in trainable and "layers_0" not in trainable
    assert (
        trainable["layers"]["mlp"]["up_proj"]["kernel"]
        is not policy.base["layers"]["mlp"]["up_proj"]["kernel"]
    )  # a copy: the step donates it, the base stays the reference
    exported, lora = policy.export_trees(trainable)
    assert lora is None
    jax.tree.map(np.testing.assert_array_equal, exported, params)
