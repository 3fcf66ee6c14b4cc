"""Per-token logprobs of sampled completions under a policy, in one teacher-forced forward.

Rows are ``prompt_ids [R, P]`` (left-padded, ``prompt_mask``) followed by
``completion_ids [R, L]`` (right-padded after the stop token, ``completion_mask``), exactly as
the sampler returns them. The forward runs over the concatenation ``[R, P + L]`` with
positions counted over real tokens (0 at each row's first prompt token, the completion
right after the prompt). Hidden state ``h[:, j]`` predicts token ``j + 1``, so completion token
``t`` (at column ``P + t``) is predicted by ``h[:, P - 1 + t]``: only the L hidden states
``h[:, P-1 : P+L-1]`` go through the LM head, and the ``[R, P + L, V]`` logits are never built.

    logp[r, t]    = log softmax(logits[r, t] / temperature)[completion_ids[r, t]]   (0 off mask)
    entropy[r, t] = -sum_v p[r, t, v] log p[r, t, v]                      (no gradient, 0 off mask)

Temperature 1 gives the sampler's ``Completions.logprobs`` (the policy itself).

Shared prompts (``rows_per_prompt`` = g > 1): when each run of g consecutive rows holds the
same prompt (the sampler's group-major layout), the prompt is run once per run of rows into
a KV cache that the g rows share (read once per prompt, not copied per row), and only
the completions are run per row, attending to it. Same values and gradients (the cache
is differentiable), and the prompt part of the forward and backward costs 1/g: with
64-token prompts, 32-token completions and G = 8 that is 2560 instead of 6144 token
positions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from rlvr_jax.models.decoder import Decoder, left_padded_positions
from rlvr_jax.models.prefill import prefill_shared
from rlvr_jax.rl.head_logprobs import head_token_logprobs, map_token_chunks


def completion_hidden(
    model: Decoder,
    variables: dict[str, Any],
    prompt_ids_RP: jax.Array,
    prompt_mask_RP: jax.Array,
    completion_ids_RL: jax.Array,
    completion_mask_RL: jax.Array,
    rows_per_prompt: int = 1,
) -> jax.Array:
    """The final (normed) hidden states ``[R, L, D]`` that predict the L completion tokens:
    ``h[:, t]`` is the state before completion token t (what a value head reads).

    ``rows_per_prompt`` = g: rows r*g .. r*g+g-1 share one prompt (module docstring); 1 makes
    no assumption about the rows.
    """
    if rows_per_prompt > 1:
        return _shared_prompt_hidden(
            model,
            variables,
            prompt_ids_RP,
            prompt_mask_RP,
            completion_ids_RL,
            completion_mask_RL,
            rows_per_prompt,
        )
    P = prompt_ids_RP.shape[1]
    L = completion_ids_RL.shape[1]
    tokens_RT = jnp.concatenate([prompt_ids_RP, completion_ids_RL], axis=1)
    mask_RT = jnp.concatenate([prompt_mask_RP, completion_mask_RL], axis=1).astype(jnp.int32)
    hidden_RTD, _ = model.apply(
        variables,
        tokens_RT,
        left_padded_positions(mask_RT),
        mask_RT,
        method=Decoder.hidden_states,
    )
    return hidden_RTD[:, P - 1 : P + L - 1]


def map_logit_chunks(
    model: Decoder,
    variables: dict[str, Any],
    hidden_RLD: jax.Array,
    completion_ids_RL: jax.Array,
    per_token: Callable[[jax.Array, jax.Array], tuple[jax.Array, ...]],
) -> tuple[jax.Array, ...]:
    """``per_token(logits_RCV, ids_RC) -> ([R, C] arrays)`` over the completion tokens'
    logits, ``LOGITS_CHUNK_TOKENS`` tokens at a time, each chunk rematerialized (rows stay
    whole, so their sharding does too); returns the [R, L] arrays."""

    @jax.checkpoint
    def one_chunk(hidden_RCD, ids_RC):
        return per_token(model.apply(variables, hidden_RCD, method=Decoder.logits), ids_RC)

    return map_token_chunks(one_chunk, hidden_RLD, completion_ids_RL)


def logprobs_from_hidden(
    model: Decoder,
    variables: dict[str, Any],
    hidden_RLD: jax.Array,
    completion_ids_RL: jax.Array,
    completion_mask_RL: jax.Array,
    temperature: float = 1.0,
) -> tuple[jax.Array, jax.Array]:
    """``(logp_RL, entropy_RL)`` of the completion tokens from their hidden states, the
    LM head run in chunks, its input gradient formed in the forward (head_logprobs.py)."""
    kernel_DV = model.apply(variables, method=Decoder.head_kernel)
    softcap = model.cfg.final_logit_softcap
    logp_RL, entropy_RL = head_token_logprobs(
        hidden_RLD, kernel_DV, completion_ids_RL, softcap, temperature
    )
    valid_RL = completion_mask_RL > 0
    return jnp.where(valid_RL, logp_RL, 0.0), jnp.where(valid_RL, entropy_RL, 0.0)


def completion_logprobs(
    model: Decoder,
    variables: dict[str, Any],
    prompt_ids_RP: jax.Array,
    prompt_mask_RP: jax.Array,
    completion_ids_RL: jax.Array,
    completion_mask_RL: jax.Array,
    temperature: float = 1.0,
    rows_per_prompt: int = 1,
) -> tuple[jax.Array, jax.Array]:
    """Returns ``(logp_RL, entropy_RL)`` in float32, 0 where ``completion_mask`` is 0."""
    hidden_RLD = completion_hidden(
        model,
        variables,
        prompt_ids_RP,
        prompt_mask_RP,
        completion_ids_RL,
        completion_mask_RL,
        rows_per_prompt,
    )
    return logprobs_from_hidden(
        model, variables, hidden_RLD, completion_ids_RL, completion_mask_RL, temperature
    )


def _shared_prompt_hidden(
    model: Decoder,
    variables: dict[str, Any],
    prompt_ids_RP: jax.Array,
    prompt_mask_RP: jax.Array,
    completion_ids_RL: jax.Array,
    completion_mask_RL: jax.Array,
    g: int,
) -> jax.Array:
    """Hidden states ``[R, L, D]`` predicting the completion tokens, prompts run once per g rows."""
    R = prompt_ids_RP.shape[0]
    L = completion_ids_RL.shape[1]
    if R % g:
        raise ValueError(f"{R} rows are not whole runs of rows_per_prompt={g}")
    prompt_ids_BP, prompt_mask_BP = prompt_ids_RP[::g], prompt_mask_RP[::g]
    hidden_BPD, cache = prefill_shared(model, variables, prompt_ids_BP, prompt_mask_BP, L, g)
    prompt_len_R1 = jnp.repeat(jnp.sum(prompt_mask_BP, axis=1, keepdims=True), g, axis=0)
    positions_RL = prompt_len_R1 + jnp.arange(L)[None, :]
    hidden_comp_RLD, _ = model.apply(
        variables,
        completion_ids_RL,
        positions_RL,
        completion_mask_RL,
        cache,
        method=Decoder.hidden_states,
    )
    last_prompt_R1D = jnp.repeat(hidden_BPD[:, -1:], g, axis=0)
    # Position P - 1 + t predicts completion token t: the prompt's last state, then the
    # completion's own states except the last.
    return jnp.concatenate([last_prompt_R1D, hidden_comp_RLD[:, :-1]], axis=1)
