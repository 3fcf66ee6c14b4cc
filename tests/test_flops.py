"""FLOP counts against hand-computed values."""

from __future__ import annotations

import dataclasses

from rlvr_jax.flops import block_params, decode_flops_per_token, forward_flops
from tests.tiny_rl import tiny_config


def test_block_params_leave_out_embedding_and_head():
    cfg = tiny_config()
    d, f, n, k, h = (
        cfg.hidden_size,
        cfg.intermediate_size,
        cfg.num_heads,
        cfg.num_kv_heads,
        cfg.head_dim,
    )
    per_layer = 2 * d * n * h + 2 * d * k * h + 3 * d * f
    assert block_params(cfg) == cfg.num_layers * per_layer
    untied = dataclasses.replace(cfg, tie_embeddings=False)
    assert block_params(untied) == block_params(cfg)


def test_decode_and_forward_flops_by_hand():
    cfg = tiny_config()
    V, D, L = cfg.vocab_size, cfg.hidden_size, cfg.num_layers
    attention = 4 * 10 * cfg.num_heads * cfg.head_dim * L  # 10 keys
    assert decode_flops_per_token(cfg, 10) == 2 * block_params(cfg) + attention + 2 * V * D
    # 7 positions through the blocks, 3 through the LM head (a prompt is not scored).
    expected = 7 * (2 * block_params(cfg) + attention) + 3 * 2 * V * D
    assert forward_flops(cfg, 7, 3, 10) == expected
