"""Batched generation with a preallocated KV cache, in one jitted program.

The prompts (B rows) are prefilled once into a cache that the R = B * G rows (G =
num_samples) share as its prefix, read once per prompt (models/attention.py); the rows
decode together into their own slots in a `lax.while_loop` that stops as soon as every
row has emitted a stop token (or after `max_new_tokens`), each step reading only the own
slots filled so far. Row r belongs to prompt r // G.

Two log-probabilities are returned per generated token:
  * `logprobs`: log pi(token) under the policy itself, i.e. log_softmax of the raw logits
    (temperature 1, no top-k/top-p). This is what the GRPO loss uses as "old" logprobs.
  * `sampling_logprobs`: log q(token) under the distribution actually sampled from
    (temperature, top-k and top-p applied); 0 for greedy decoding.
The caller passes Flax variables (`Policy.variables`: the base with or without a LoRA
tree); the sampler never decides which parameters make the policy.

Data parallel on a mesh (`generate(..., mesh=mesh)`): each process passes its own
prompts; they become one global [B, P] array sharded by prompt over the batch axes
`('data', 'fsdp')`, the params keep their own (train step) shardings, and the cache, the
decode loop and every output are sharded by row, so each device prefills and decodes only
its B / n prompts and their G samples. Random draws are keyed by global row index
(`fold_in(fold_in(rng, t), r)`), so the completions do not depend on the mesh shape or the
process count.
Shape letters (package table in `rlvr_jax/__init__.py`): B prompts, P prompt slots, G
samples per prompt, R = B * G rows, L max new tokens, V vocab.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from rlvr_jax.models.decoder import Decoder
from rlvr_jax.models.layer_stack import stack_variables
from rlvr_jax.models.prefill import prefill_shared
from rlvr_jax.multihost import global_max
from rlvr_jax.parallel import batch_sharding
from rlvr_jax.sampling.config import SamplingConfig, SpecialTokens
from rlvr_jax.sampling.filters import sampling_logits
from rlvr_jax.sampling.prompts import left_pad

# Own (completion) cache slots a decode step reads at a time, up to the filled length: a
# step's attention then costs what has been generated, not `max_new_tokens`.
DECODE_READ_CHUNK = 32


@flax.struct.dataclass
class Completions:
    prompt_ids: jax.Array  # [R, P] left-padded prompt of each row
    prompt_mask: jax.Array  # [R, P]
    ids: jax.Array  # [R, L] generated tokens, pad after a row's stop token
    mask: jax.Array  # [R, L] 1 for generated tokens, stop token included
    logprobs: jax.Array  # [R, L] float32 policy logprobs (temperature 1), 0 where mask is 0
    sampling_logprobs: jax.Array  # [R, L] float32 logprobs under the sampling distribution
    lengths: jax.Array  # [R] number of generated tokens
    truncated: jax.Array  # [R] bool, no stop token within max_new_tokens


def generate(
    model: Decoder,
    variables: dict[str, Any],
    prompts: Sequence[Sequence[int]],
    rng: jax.Array,
    cfg: SamplingConfig,
    tokens: SpecialTokens,
    mesh: Mesh | None = None,
) -> Completions:
    """Samples `cfg.num_samples` completions for each prompt (lists of token ids).

    Without a mesh: one device, the arrays as given. With `mesh`: `prompts` are this
    process's (its device count must divide their number) and the result is a global
    array sharded by row (module docstring); `multihost.local_rows` reads this
    process's rows of it.
    """
    if mesh is None:
        tokens_BP, mask_BP = left_pad(prompts, cfg.prompt_buckets, tokens.pad_token_id)
        return generate_padded(model, variables, tokens_BP, mask_BP, rng, cfg, tokens)
    local_devices = len([d for d in mesh.devices.flat if d.process_index == jax.process_index()])
    if len(prompts) % local_devices:
        raise ValueError(
            f"sampling: {len(prompts)} prompts on this process do not split over its "
            f"{local_devices} devices; make rl.prompts_per_step and eval.batch_size "
            f"multiples of the device count ({mesh.size})"
        )
    longest = global_max(max((len(p) for p in prompts), default=0))
    tokens_BP, mask_BP = left_pad(prompts, cfg.prompt_buckets, tokens.pad_token_id, longest)
    rows = batch_sharding(mesh)
    tokens_BP, mask_BP = (
        jax.make_array_from_process_local_data(rows, x) for x in (tokens_BP, mask_BP)
    )
    return generate_padded(model, variables, tokens_BP, mask_BP, rng, cfg, tokens, rows)


@functools.partial(jax.jit, static_argnames=("model", "cfg", "tokens", "rows"))
def generate_padded(
    model: Decoder,
    variables: dict[str, Any],
    tokens_BP: jax.Array,
    mask_BP: jax.Array,
    rng: jax.Array,
    cfg: SamplingConfig,
    tokens: SpecialTokens,
    rows: NamedSharding | None = None,
) -> Completions:
    """`generate` on prompts already left-padded to a bucket (jitted once per shape).

    `rows`: the sharding of every row-indexed array (prompts, cache, outputs), or None.
    """

    def by_row(x, axis=0):
        if rows is None:
            return x
        spec = PartitionSpec(*[None] * axis, *rows.spec)
        return jax.lax.with_sharding_constraint(x, NamedSharding(rows.mesh, spec))

    if model.scan_layers:  # stacked once, outside the decode loop
        variables = stack_variables(variables)
    B, P = tokens_BP.shape
    G, L = cfg.num_samples, cfg.max_new_tokens
    R = B * G
    pad_id = tokens.pad_token_id
    own_slots = -(-L // DECODE_READ_CHUNK) * DECODE_READ_CHUNK
    hidden_BPD, cache = prefill_shared(
        model, variables, tokens_BP, mask_BP, own_slots, G, DECODE_READ_CHUNK
    )
    cache = cache.map_rows(by_row)
    logits_BV = model.apply(variables, hidden_BPD[:, -1:], method=Decoder.logits)[:, 0]
    logits_RV = by_row(jnp.repeat(logits_BV, G, axis=0))
    row_ids_R = by_row(jnp.arange(R, dtype=jnp.int32))
    # Left padding: a prompt's last token sits at slot P - 1, its position is its length - 1.
    first_position_R = jnp.repeat(jnp.sum(mask_BP, axis=1, dtype=jnp.int32), G)
    stop_ids = jnp.asarray(
        sorted({*tokens.stop_token_ids, *cfg.extra_stop_token_ids}) or (-1,), jnp.int32
    )

    def sample(logits_RV, step_rng):
        """(tokens, sampling logprobs, policy logprobs) of one step, in a few passes over V."""
        logits_RV = logits_RV.astype(jnp.float32)
        if cfg.greedy:
            token_R = jnp.argmax(logits_RV, axis=-1).astype(jnp.int32)
            logq_R = jnp.zeros(R, jnp.float32)
        else:
            scaled_RV = sampling_logits(logits_RV, cfg)
            max_R1 = jnp.max(scaled_RV, axis=-1, keepdims=True)
            weights_RV = jnp.exp(scaled_RV - max_R1)  # unnormalized q; 0 where filtered
            token_R = _inverse_cdf_sample(weights_RV, _row_uniforms(step_rng, row_ids_R))
            logq_R = _at(scaled_RV, token_R) - max_R1[:, 0] - jnp.log(jnp.sum(weights_RV, axis=-1))
            if cfg.samples_from_policy:  # q = pi: the policy logprob is the same number
                return token_R, logq_R, logq_R
        logp_R = _at(logits_RV, token_R) - jax.nn.logsumexp(logits_RV, axis=-1)
        return token_R, logq_R, logp_R

    def body(state):
        t, logits_RV, cache, ids_RL, mask_RL, logp_RL, logq_RL, done_R = state
        token_R, logq_R, logp_R = sample(logits_RV, jax.random.fold_in(rng, t))
        active_R = ~done_R
        token_R = jnp.where(active_R, token_R, pad_id)
        ids_RL = ids_RL.at[:, t].set(token_R)
        mask_RL = mask_RL.at[:, t].set(active_R)
        logp_RL = logp_RL.at[:, t].set(jnp.where(active_R, logp_R, 0.0))
        logq_RL = logq_RL.at[:, t].set(jnp.where(active_R, logq_R, 0.0))
        done_R = done_R | jnp.isin(token_R, stop_ids)
        logits_R1V, cache = model.apply(
            variables,
            token_R[:, None],
            (first_position_R + t)[:, None],
            active_R[:, None],
            cache,
        )
        return t + 1, logits_R1V[:, 0], cache, ids_RL, mask_RL, logp_RL, logq_RL, done_R

    def cond(state):
        t, *_, done_R = state
        return (t < L) & ~jnp.all(done_R)

    init = (
        jnp.zeros((), jnp.int32),
        logits_RV,
        cache,
        by_row(jnp.full((R, L), pad_id, jnp.int32)),
        by_row(jnp.zeros((R, L), bool)),
        by_row(jnp.zeros((R, L), jnp.float32)),
        by_row(jnp.zeros((R, L), jnp.float32)),
        by_row(jnp.zeros(R, bool)),
    )
    _, _, _, ids_RL, mask_RL, logp_RL, logq_RL, done_R = jax.lax.while_loop(cond, body, init)
    return jax.tree.map(
        by_row,
        Completions(
            prompt_ids=jnp.repeat(tokens_BP, G, axis=0),
            prompt_mask=jnp.repeat(mask_BP, G, axis=0),
            ids=ids_RL,
            mask=mask_RL.astype(jnp.int32),
            logprobs=logp_RL,
            sampling_logprobs=logq_RL,
            lengths=jnp.sum(mask_RL, axis=1, dtype=jnp.int32),
            truncated=~done_R,
        ),
    )


def _row_uniforms(step_rng: jax.Array, row_ids_R: jax.Array) -> jax.Array:
    """Two uniforms per row from a key of its own: draws independent of the row sharding."""
    return jax.vmap(lambda r: jax.random.uniform(jax.random.fold_in(step_rng, r), (2,)))(row_ids_R)


def _at(x_RV: jax.Array, index_R: jax.Array) -> jax.Array:
    return jnp.take_along_axis(x_RV, index_R[:, None], axis=-1)[:, 0]


def _inverse_cdf_sample(weights_RV: jax.Array, u_R2: jax.Array, block: int = 256) -> jax.Array:
    """A token per row with probability proportional to `weights_RV` (>= 0, some > 0 per row),
    from two uniforms in [0, 1) per row (`u_R2`).

    Two-level inverse CDF: a block of `block` tokens by the CDF of the block masses, then a
    token within it by the CDF of its weights, each with its own uniform. Exact, and it
    avoids a cumulative sum over the whole vocabulary (slow on XLA:CPU: 9 ms of a 150 ms
    decode step at batch 32), and V Gumbel draws. A zero weight never extends a CDF, so it
    is never the first index with cdf > u * total (u < 1): filtered tokens and the padding
    of the last block cannot be drawn.
    """
    R, V = weights_RV.shape
    num_blocks = -(-V // block)
    padded_RV = jnp.pad(weights_RV, ((0, 0), (0, num_blocks * block - V)))
    blocks_RNK = padded_RV.reshape(R, num_blocks, block)
    u_block_R1, u_token_R1 = jnp.split(u_R2, 2, axis=1)
    block_R = _first_above(jnp.sum(blocks_RNK, axis=-1), u_block_R1)
    chosen_RK = jnp.take_along_axis(blocks_RNK, block_R[:, None, None], axis=1)[:, 0]
    return block_R * block + _first_above(chosen_RK, u_token_R1)


def _first_above(weights_RN: jax.Array, u_R1: jax.Array) -> jax.Array:
    """The first index whose cumulative weight exceeds u times the row's total."""
    cdf_RN = jnp.cumsum(weights_RN, axis=-1)
    return jnp.sum(cdf_RN <= u_R1 * cdf_RN[:, -1:], axis=-1).astype(jnp.int32)
