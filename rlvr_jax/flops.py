"""Model FLOP counts and the machine's measured matmul peak, for roofline fractions.

FLOPs count matmuls only (2 per multiply-add); norms, rotary, softmax and the embedding
lookup are free. The fraction reported by the benchmarks is achieved model FLOP/s over
`matmul_peak_flops()`: work a perfect implementation must do, so recomputation (gradient
checkpointing) or padding counts against it, as in MFU.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from rlvr_jax.models.config import DecoderConfig


def matmul_peak_flops(n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of the fastest of `repeats` jitted fp32 [n, n] @ [n, n] (after a warm-up)."""
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f(a).block_until_ready()
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / min(times)


def block_params(cfg: DecoderConfig) -> int:
    """Matmul weights of the transformer blocks (no embedding, no LM head)."""
    head = 0 if cfg.tie_embeddings else cfg.vocab_size * cfg.hidden_size
    return cfg.num_params - cfg.vocab_size * cfg.hidden_size - head


def attention_flops(cfg: DecoderConfig, context: float) -> float:
    """Scores and weighted values of one query position over `context` keys, all layers."""
    return 2 * 2 * context * cfg.num_heads * cfg.head_dim * cfg.num_layers


def forward_flops(
    cfg: DecoderConfig, positions: int, head_positions: int, mean_context: float
) -> float:
    """One forward: `positions` through the blocks, `head_positions` through the LM head."""
    blocks = positions * (2 * block_params(cfg) + attention_flops(cfg, mean_context))
    return blocks + head_positions * 2 * cfg.vocab_size * cfg.hidden_size


def decode_flops_per_token(cfg: DecoderConfig, context: float) -> float:
    """One decode step of one row: every block, the LM head, attention over `context`."""
    return forward_flops(cfg, 1, 1, context)
