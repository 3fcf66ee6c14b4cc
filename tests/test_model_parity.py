"""Our Flax decoder against transformers' PyTorch models, fp32, random weights."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hf_reference import hf_logits, left_padded_batch, save_tiny_hf

from rlvr_jax.models import Decoder, KVCache, load_decoder_config
from rlvr_jax.models.hf_weights import load_hf_params

FAMILIES = ["llama", "qwen2", "qwen3", "gemma3"]


@pytest.fixture(scope="module", params=FAMILIES)
def family_ckpt(request, tmp_path_factory):
    family = request.param
    ckpt = tmp_path_factory.mktemp(family)
    hf_model = save_tiny_hf(family, ckpt)
    cfg = load_decoder_config(ckpt)
    return family, hf_model, Decoder(cfg), load_hf_params(ckpt, cfg)


def _ours(model, params, tokens, mask, positions):
    logits, _ = model.apply({"params": params}, tokens, positions, mask)
    return np.asarray(logits)


def test_logits_match_transformers_left_padded(family_ckpt):
    family, hf_model, model, params = family_ckpt
    tokens, mask, positions = left_padded_batch()
    ours = _ours(model, params, tokens, mask, positions)
    ref = hf_logits(hf_model, tokens, mask, positions)
    real = mask.astype(bool)
    diff = np.abs(ours - ref)[real].max()
    assert diff <= 1e-4, f"{family}: max |logit diff| {diff:.2e} on real tokens"


def test_padded_row_equals_row_alone(family_ckpt):
    family, _, model, params = family_ckpt
    tokens, mask, positions = left_padded_batch()
    batch = _ours(model, params, tokens, mask, positions)
    for row in range(tokens.shape[0]):
        n = int(mask[row].sum())
        alone = _ours(
            model,
            params,
            tokens[row : row + 1, -n:],
            mask[row : row + 1, -n:],
            positions[row : row + 1, -n:],
        )
        np.testing.assert_allclose(batch[row, -n:], alone[0], atol=1e-5, err_msg=family)


def test_prefill_then_decode_equals_full_forward(family_ckpt):
    family, _, model, params = family_ckpt
    tokens, mask, positions = left_padded_batch(seed=1)
    full = _ours(model, params, tokens, mask, positions)
    B, T = tokens.shape
    cache = KVCache.empty(model.cfg, B, num_slots=T + 3, dtype=jnp.float32)
    prefix = slice(0, T - 1)
    _, cache = model.apply(
        {"params": params}, tokens[:, prefix], positions[:, prefix], mask[:, prefix], cache
    )
    step = slice(T - 1, T)
    logits, cache = model.apply(
        {"params": params}, tokens[:, step], positions[:, step], mask[:, step], cache
    )
    assert int(cache.end) == T
    np.testing.assert_allclose(np.asarray(logits)[:, 0], full[:, -1], atol=1e-5, err_msg=family)


def test_hidden_states_match_layer_by_layer(tmp_path):
    import torch

    ckpt = tmp_path / "llama"
    hf_model = save_tiny_hf("llama", ckpt)
    cfg = load_decoder_config(ckpt)
    params = load_hf_params(ckpt, cfg)
    tokens, mask, positions = left_padded_batch()
    _, state = Decoder(cfg).apply(
        {"params": params}, tokens, positions, mask, mutable=["intermediates"]
    )
    ours = state["intermediates"]["hidden_states"]
    with torch.no_grad():
        out = hf_model(
            input_ids=torch.as_tensor(tokens),
            attention_mask=torch.as_tensor(mask),
            position_ids=torch.as_tensor(positions),
            output_hidden_states=True,
        )
    ref = [h.numpy() for h in out.hidden_states]
    # HF: embeddings, outputs of layers 0..L-2, then the final *normed* output.
    assert len(ours) == len(ref) == cfg.num_layers + 1
    real = mask.astype(bool)
    for i in range(cfg.num_layers):
        diff = np.abs(np.asarray(ours[i]) - ref[i])[real].max()
        assert diff <= 1e-5, f"hidden state {i}: max diff {diff:.2e}"


def test_causality_by_gradients(family_ckpt):
    """The output at time t does not depend on tokens after t (embedding gradients are 0).

    Differentiates the final hidden state, not the logits: with tied embeddings the LM head
    would give every embedding row a gradient.
    """
    family, _, model, params = family_ckpt
    tokens, mask, positions = left_padded_batch(lengths=(7,))
    t = 3

    def hidden_at_t(embedding):
        p = {**params, "embed": {"embedding": embedding}}
        hidden, _ = model.apply(
            {"params": p}, tokens, positions, mask, method=Decoder.hidden_states
        )
        return hidden[0, t].sum()

    grads = jax.grad(hidden_at_t)(params["embed"]["embedding"])
    future = np.unique(tokens[0, t + 1 :])
    past = np.unique(tokens[0, : t + 1])
    future_only = np.setdiff1d(future, past)
    assert np.all(np.asarray(grads)[future_only] == 0), family
    assert np.any(np.asarray(grads)[past] != 0), family
