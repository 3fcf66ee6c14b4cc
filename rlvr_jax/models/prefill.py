"""Prefill once, decode many: the prompt forward that the sampler and the scorer share.

GRPO samples G completions per prompt. Both the sampler (``sampling/generate.py``) and the
shared-prompt training forward (``rl/policy_logprobs.py``) run each of the B distinct
prompts once into a KV cache and then repeat the cache G times, so the R = B * G rows
attend to their prompt without recomputing it. Row r holds prompt r // G.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rlvr_jax.models.decoder import Decoder, left_padded_positions
from rlvr_jax.models.kv_cache import KVCache


def params_dtype(variables: dict[str, Any]) -> Any:
    """The activation dtype of a model: that of its embedding table."""
    return jax.tree.leaves(variables["params"]["embed"])[0].dtype


def prefill_repeated(
    model: Decoder,
    variables: dict[str, Any],
    tokens_BP: jax.Array,
    mask_BP: jax.Array,
    num_slots: int,
    repeats: int,
) -> tuple[jax.Array, KVCache]:
    """``(hidden_BPD, cache)``: the B left-padded prompts run once into a fresh cache of
    ``num_slots`` slots, the cache then repeated ``repeats`` times along its rows (B * repeats
    rows, row r holding prompt r // repeats). The cache is differentiable: gradients of
    later forwards reach the prompt's keys and values once per prompt, summed over rows.
    """
    cache = KVCache.empty(
        model.cfg, tokens_BP.shape[0], num_slots, params_dtype(variables), model.scan_layers
    )
    hidden_BPD, cache = model.apply(
        variables,
        tokens_BP,
        left_padded_positions(mask_BP),
        mask_BP,
        cache,
        method=Decoder.hidden_states,
    )
    if repeats > 1:
        cache = cache.map_rows(lambda x, axis: jnp.repeat(x, repeats, axis=axis))
    return hidden_BPD, cache
