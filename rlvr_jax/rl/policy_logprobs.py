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
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rlvr_jax.models.decoder import Decoder, left_padded_positions
from rlvr_jax.rl.logprobs import token_logprobs_and_entropy


def model_variables(params: Any, lora: Any | None) -> dict[str, Any]:
    """Flax variables: the base alone (reference, full fine-tuning) or base + LoRA."""
    return {"params": params} if lora is None else {"params": params, "lora": lora}


def completion_logprobs(
    model: Decoder,
    variables: dict[str, Any],
    prompt_ids_RP: jax.Array,
    prompt_mask_RP: jax.Array,
    completion_ids_RL: jax.Array,
    completion_mask_RL: jax.Array,
    temperature: float = 1.0,
) -> tuple[jax.Array, jax.Array]:
    """Returns ``(logp_RL, entropy_RL)`` in float32, 0 where ``completion_mask`` is 0."""
    P = prompt_ids_RP.shape[1]
    L = completion_ids_RL.shape[1]
    tokens_RT = jnp.concatenate([prompt_ids_RP, completion_ids_RL], axis=1)
    mask_RT = jnp.concatenate([prompt_mask_RP, completion_mask_RL], axis=1).astype(jnp.int32)
    hidden_RTD, _ = model.apply(
        variables, tokens_RT, left_padded_positions(mask_RT), mask_RT, method=Decoder.hidden_states
    )
    logits_RLV = model.apply(variables, hidden_RTD[:, P - 1 : P + L - 1], method=Decoder.logits)
    logp_RL, entropy_RL = token_logprobs_and_entropy(logits_RLV, completion_ids_RL, temperature)
    valid_RL = completion_mask_RL > 0
    return jnp.where(valid_RL, logp_RL, 0.0), jnp.where(valid_RL, entropy_RL, 0.0)
