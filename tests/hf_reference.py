"""Tiny Hugging Face reference models (PyTorch) with random weights, for parity tests.

Dimensions are small and odd on purpose: a transposed kernel or a swapped head axis
cannot hide behind a square shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

VOCAB = 131


def tiny_hf_config(family: str):
    import transformers as tf

    common = dict(
        vocab_size=VOCAB,
        max_position_embeddings=256,
        rms_norm_eps=1e-5,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    if family == "llama":
        return tf.LlamaConfig(
            **common,
            hidden_size=42,
            intermediate_size=37,
            num_hidden_layers=3,
            num_attention_heads=3,
            num_key_value_heads=1,
            tie_word_embeddings=False,
            rope_parameters={
                "rope_type": "llama3",
                "rope_theta": 500000.0,
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 16,
            },
        )
    if family == "qwen2":
        return tf.Qwen2Config(
            **common,
            hidden_size=30,
            intermediate_size=29,
            num_hidden_layers=3,
            num_attention_heads=5,
            num_key_value_heads=1,
            tie_word_embeddings=True,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        )
    if family == "qwen3":
        return tf.Qwen3Config(
            **common,
            hidden_size=37,
            intermediate_size=53,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=10,
            tie_word_embeddings=True,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        )
    if family == "gemma3":
        return tf.Gemma3TextConfig(
            **common,
            hidden_size=44,  # Gemma 3 requires heads | hidden; head_dim differs
            intermediate_size=41,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=10,
            query_pre_attn_scalar=12,
            sliding_window=3,
            layer_types=[
                "sliding_attention",
                "sliding_attention",
                "full_attention",
                "sliding_attention",
            ],
            final_logit_softcapping=5.0,
            attn_logit_softcapping=None,
            rope_parameters={
                "full_attention": {"rope_type": "linear", "rope_theta": 1000000.0, "factor": 2.0},
                "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
            },
        )
    raise ValueError(family)


def tiny_hf_model(family: str, seed: int = 0):
    """A transformers causal LM with every parameter (norms included) randomized."""
    import torch
    import transformers as tf

    torch.manual_seed(seed)
    config = tiny_hf_config(family)
    config._attn_implementation = "eager"
    model = tf.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if "norm" in name:
                # Around 1 for Llama-style norms, around 0 for Gemma's (1 + w).
                base = 0.0 if family == "gemma3" else 1.0
                param.copy_(base + 0.2 * noise)
            else:
                param.copy_(0.3 * noise if "embed" in name else 0.15 * noise)
    return model.eval()


def save_tiny_hf(family: str, out_dir: Path, seed: int = 0):
    model = tiny_hf_model(family, seed)
    model.save_pretrained(out_dir, safe_serialization=True)
    return model


def tiny_family(family: str, tmp_path_factory):
    """(family, DecoderConfig, params) of a tiny random HF checkpoint saved to a temp dir."""
    from rlvr_jax.models import load_decoder_config
    from rlvr_jax.models.hf_weights import load_hf_params

    ckpt = tmp_path_factory.mktemp(family)
    save_tiny_hf(family, ckpt)
    cfg = load_decoder_config(ckpt)
    return family, cfg, load_hf_params(ckpt, cfg)


def left_padded_batch(seed: int = 0, lengths=(9, 6, 4), vocab: int = VOCAB):
    """Token ids [B, T], mask [B, T] and positions [B, T] of a left-padded batch."""
    rng = np.random.default_rng(seed)
    T = max(lengths)
    tokens = np.zeros((len(lengths), T), np.int64)
    mask = np.zeros((len(lengths), T), np.int64)
    for row, n in enumerate(lengths):
        tokens[row, T - n :] = rng.integers(3, vocab, n)
        mask[row, T - n :] = 1
    positions = np.maximum(np.cumsum(mask, axis=1) - 1, 0)
    return tokens, mask, positions


def hf_logits(model, tokens, mask, positions) -> np.ndarray:
    import torch

    with torch.no_grad():
        out = model(
            input_ids=torch.as_tensor(tokens),
            attention_mask=torch.as_tensor(mask),
            position_ids=torch.as_tensor(positions),
        )
    return out.logits.float().numpy()
