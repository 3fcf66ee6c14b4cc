"""Prefill once, decode many: the prompt forward that the sampler and the scorer share.

GRPO samples G completions per prompt. Both the sampler (``sampling/generate.py``) and the
shared-prompt training forward (``rl/policy_logprobs.py``) run each of the B distinct
prompts once into a KV cache that the R = B * G rows then share (`SharedPrefix`), so they
attend to their prompt without recomputing it, copying it, or reading it G times. Row r
holds prompt r // G.
"""

from __future__ import annotations

from typing import Any

import jax

from rlvr_jax.models.decoder import Decoder, left_padded_positions
from rlvr_jax.models.kv_cache import KVCache, SharedPrefix


def params_dtype(variables: dict[str, Any]) -> Any:
    """The activation dtype of a model: that of its embedding table."""
    return jax.tree.leaves(variables["params"]["embed"])[0].dtype


def prefill_shared(
    model: Decoder,
    variables: dict[str, Any],
    tokens_BP: jax.Array,
    mask_BP: jax.Array,
    own_slots: int,
    repeats: int,
    read_chunk: int = 0,
) -> tuple[jax.Array, KVCache]:
    """``(hidden_BPD, cache)``: the B left-padded prompts run once into a cache of their P
    slots, which becomes the `SharedPrefix` of a cache for B * ``repeats`` rows (row r
    continuing prompt r // ``repeats``) with ``own_slots`` empty slots each for what
    follows. The prompts' keys are neither copied per row nor read per row, and are
    differentiable: gradients of later forwards reach them once per prompt, summed over
    its rows. ``read_chunk``: `KVCache.read_chunk`.
    """
    B, P = tokens_BP.shape
    dtype = params_dtype(variables)
    prompts = KVCache.empty(model.cfg, B, P, dtype, model.scan_layers)
    hidden_BPD, prompts = model.apply(
        variables,
        tokens_BP,
        left_padded_positions(mask_BP),
        mask_BP,
        prompts,
        method=Decoder.hidden_states,
    )
    prefix = SharedPrefix(prompts.k, prompts.v, prompts.positions_BS, prompts.valid_BS)
    cache = KVCache.empty(model.cfg, B * repeats, own_slots, dtype, model.scan_layers)
    return hidden_BPD, cache.replace(prefix=prefix, read_chunk=read_chunk)
