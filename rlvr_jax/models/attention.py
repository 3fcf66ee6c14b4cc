"""Grouped-query attention in blocks of keys, merged exactly by their softmax statistics.

A query reads up to two sets of keys:

  * a **shared prefix**: the keys of a prompt that G consecutive rows sample from
    (`KVCache.prefix`), stored and read once per prompt, not once per row; the G rows'
    queries become extra query heads of one dot against it;
  * the row's **own slots** (its completion), read whole, or while decoding in chunks of
    `read_chunk` slots up to the filled length only (`KVCache.read_chunk`), or, in a long
    causal forward, up to the last query of each query chunk.

Each block yields partial softmax statistics (`Stats`: running max, sum of exponentials,
exponential-weighted values) that merge exactly (the online-softmax identity), so the
result is the softmax over the union of the blocks' keys, within float rounding.

Local shape letters (package table in `rlvr_jax/__init__.py`): E query heads per kv head
(N = K * E); X the rows of a key block (R for own slots, B for a shared prefix); M the
query rows of one (row, kv head)'s dot: T * E, or G * T * E against a shared prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import flax.struct
import jax
import jax.numpy as jnp

from rlvr_jax.models import attention_dots

# Finite, so a query with no visible key (a padding row) gives a uniform softmax, not NaN.
MASKED = -1e30
# A forward over more query tokens than this (a long prompt's prefill, the train step's
# completions) attends in chunks of this many queries, each rematerialized: the scores of
# one chunk [R, K, QUERY_CHUNK, E, S] are alive at a time, in the backward too, instead of
# [R, K, T, E, S] per layer (64 rows x 512 tokens: 1.2 GB a layer). Where the T tokens
# are the own slots 0 .. T-1, a chunk reads only the slots up to its last query
# (`in_query_chunks`, causal). 64 and 32 were measured no faster (BUILD_NOTES, eleventh
# session) and hold more memory.
QUERY_CHUNK = 128


@flax.struct.dataclass
class KeyLayout:
    """Who sees which keys in one forward; the same for every layer."""

    q_positions_RT: jax.Array  # position of each query token
    q_slots_T: jax.Array  # own slot of each query token
    positions_RS: jax.Array  # position of the token in each own slot (this forward's included)
    valid_RS: jax.Array  # the own slot holds a real token
    filled: jax.Array  # own slots written, this forward's included (int32 scalar)
    prefix_positions_BP: jax.Array | None = None  # a shared prefix's, when there is one
    prefix_valid_BP: jax.Array | None = None
    read_chunk: int = flax.struct.field(pytree_node=False, default=0)


@flax.struct.dataclass
class LayerKV:
    """One layer's cache during a forward: its own slots, where this forward's tokens go,
    and the shared prefix's keys, if any."""

    k: jax.Array  # own slots [R, K, S, H], or the stacked [L, R, K, S, H] with `layer`
    v: jax.Array
    start: jax.Array  # own slot of this forward's first token
    layer: jax.Array | None = None  # this layer's index into a stacked cache
    prefix_k: jax.Array | None = None  # [B, K, P, H]
    prefix_v: jax.Array | None = None


class Stats(NamedTuple):
    """Softmax statistics of queries [R, K, T, E] over a block of keys."""

    max_RKTE: jax.Array  # the largest (masked) score
    sum_RKTE: jax.Array  # sum of exp(score - max)
    out_RKTEH: jax.Array  # sum of exp(score - max) * value, float32


def merge(a: Stats, b: Stats) -> Stats:
    """The statistics of the union of two blocks' keys."""
    m = jnp.maximum(a.max_RKTE, b.max_RKTE)
    wa, wb = jnp.exp(a.max_RKTE - m), jnp.exp(b.max_RKTE - m)
    return Stats(
        m,
        a.sum_RKTE * wa + b.sum_RKTE * wb,
        a.out_RKTEH * wa[..., None] + b.out_RKTEH * wb[..., None],
    )


def finish(stats: Stats, dtype) -> jax.Array:
    """The attention output [R, T, K, E, H] from the merged statistics."""
    out_RKTEH = stats.out_RKTEH / stats.sum_RKTE[..., None]
    return out_RKTEH.transpose(0, 2, 1, 3, 4).astype(dtype)


def _scores(scores, scale: float, softcap: float | None):
    scores = scores * scale
    if softcap is not None:
        scores = jnp.tanh(scores / softcap) * softcap
    return scores


def _block(scores, visible, v_XKNH, dtype):
    """(max, sum, weighted values) over the last axis of `scores` [X, K, .., N] (the middle
    axes are M's), masked by `visible`, with values [X, K, N, H]."""
    scores = jnp.where(visible, scores, MASKED)
    # The result does not depend on the shift (it cancels in `finish`): no gradient through
    # the max, as in jax.nn.softmax.
    m = jax.lax.stop_gradient(jnp.max(scores, axis=-1))
    p = jnp.exp(scores - m[..., None])
    p_XKMN = p.astype(dtype).reshape(*v_XKNH.shape[:2], -1, p.shape[-1])
    out_XKMH = attention_dots.weighted_values(p_XKMN, v_XKNH.astype(dtype))
    return m, jnp.sum(p, axis=-1), out_XKMH.reshape(*p.shape[:-1], v_XKNH.shape[-1])


def own_stats(
    q_RTKEH: jax.Array,
    q_positions_RT: jax.Array,
    q_slots_T: jax.Array,
    k_RKSH: jax.Array,
    v_RKSH: jax.Array,
    positions_RS: jax.Array,
    valid_RS: jax.Array,
    first_slot: jax.Array | int,
    window,
    scale: float,
    softcap: float | None,
) -> Stats:
    """Statistics over a block of a row's own slots, the first of which is cache slot
    `first_slot`: valid keys at earlier-or-same slots than the query, within the window."""
    slots_S = first_slot + jnp.arange(valid_RS.shape[1])
    visible_RTS = valid_RS[:, None, :] & (slots_S[None, None, :] <= q_slots_T[None, :, None])
    if window is not None:
        visible_RTS &= q_positions_RT[:, :, None] - positions_RS[:, None, :] < window
    R, T, K, E, H = q_RTKEH.shape
    q_RKMH = q_RTKEH.transpose(0, 2, 1, 3, 4).reshape(R, K, T * E, H)
    scores_RKMS = attention_dots.scores(q_RKMH, k_RKSH.astype(q_RTKEH.dtype))
    scores_RKTES = _scores(scores_RKMS.reshape(R, K, T, E, -1), scale, softcap)
    m, s, out = _block(scores_RKTES, visible_RTS[:, None, :, None, :], v_RKSH, q_RTKEH.dtype)
    return Stats(m, s, out)


def chunked_own_stats(
    q_RTKEH: jax.Array,
    q_positions_RT: jax.Array,
    q_slots_T: jax.Array,
    read: Callable[[jax.Array], tuple[jax.Array, jax.Array]],
    positions_RS: jax.Array,
    valid_RS: jax.Array,
    filled: jax.Array,
    chunk: int,
    init: Stats,
    window,
    scale: float,
    softcap: float | None,
) -> Stats:
    """`init` merged with the statistics over the own slots [0, filled), read `chunk`
    slots at a time by `read(first_slot) -> (k_RKCH, v_RKCH)`: the cost follows the
    filled length, not the allocated one. A `lax.while_loop` with a traced trip count,
    so forward-only (decoding); the slot count must be a multiple of `chunk`."""
    if valid_RS.shape[1] % chunk:
        raise ValueError(f"{valid_RS.shape[1]} cache slots are not a multiple of {chunk}")

    def body(carry):
        c, stats = carry
        first = c * chunk
        k_RKCH, v_RKCH = read(first)
        block = own_stats(
            q_RTKEH,
            q_positions_RT,
            q_slots_T,
            k_RKCH,
            v_RKCH,
            jax.lax.dynamic_slice_in_dim(positions_RS, first, chunk, axis=1),
            jax.lax.dynamic_slice_in_dim(valid_RS, first, chunk, axis=1),
            first,
            window,
            scale,
            softcap,
        )
        return c + 1, merge(stats, block)

    num_chunks = (filled + chunk - 1) // chunk
    _, stats = jax.lax.while_loop(lambda carry: carry[0] < num_chunks, body, (0, init))
    return stats


def in_query_chunks(
    attend: Callable[..., jax.Array],
    q_RTKEH: jax.Array,
    q_positions_RT: jax.Array,
    q_slots_T: jax.Array,
    chunk: int,
    causal: bool,
) -> jax.Array:
    """`attend(q, q_positions, q_slots) -> out [R, t, K, E, H]` over chunks of `chunk`
    query tokens, each under `jax.checkpoint`.

    ``causal``: the forward's T tokens fill own slots 0 .. T-1 (no cache, or a fresh one
    of T slots), so the chunk of queries [s, e) can see own slots [0, e) only and
    `attend(q, q_positions, q_slots, e)` reads just those, skipping the keys every query of
    the chunk masks: a Python loop of static shapes (the chunks differ in key length; at
    256 tokens in chunks of 128 the own-slot scores are 3 of 4 blocks). Otherwise every
    chunk reads every slot, in one `lax.map` (the last chunk padded)."""
    if causal:
        return _causal_query_chunks(attend, q_RTKEH, q_positions_RT, q_slots_T, chunk)
    R, T = q_positions_RT.shape
    n = -(-T // chunk)
    pad = n * chunk - T

    def chunks(x, axis):  # [.., T, ..] -> [n, .., chunk, ..]
        x = jnp.pad(x, [(0, pad if i == axis else 0) for i in range(x.ndim)])
        x = x.reshape(*x.shape[:axis], n, chunk, *x.shape[axis + 1 :])
        return jnp.moveaxis(x, axis, 0)

    def one(args):
        return attend(*args)

    out_NRCKEH = jax.lax.map(
        jax.checkpoint(one),
        (chunks(q_RTKEH, 1), chunks(q_positions_RT, 1), chunks(q_slots_T, 0)),
    )
    out_RNCKEH = jnp.moveaxis(out_NRCKEH, 0, 1)
    return out_RNCKEH.reshape(R, n * chunk, *out_RNCKEH.shape[3:])[:, :T]


def _causal_query_chunks(attend, q_RTKEH, q_positions_RT, q_slots_T, chunk):
    T = q_positions_RT.shape[1]
    outs = []
    for s in range(0, T, chunk):
        e = min(s + chunk, T)

        def one(q, q_positions, q_slots, e=e):
            return attend(q, q_positions, q_slots, e)

        outs.append(jax.checkpoint(one)(q_RTKEH[:, s:e], q_positions_RT[:, s:e], q_slots_T[s:e]))
    return jnp.concatenate(outs, axis=1)


def empty_stats(q_RTKEH: jax.Array) -> Stats:
    """The statistics of no keys (merging them changes nothing)."""
    R, T, K, E, H = q_RTKEH.shape
    return Stats(
        jnp.full((R, K, T, E), MASKED, jnp.float32),
        jnp.zeros((R, K, T, E), jnp.float32),
        jnp.zeros((R, K, T, E, H), jnp.float32),
    )


def prefix_stats(
    q_RTKEH: jax.Array,
    q_positions_RT: jax.Array,
    k_BKPH: jax.Array,
    v_BKPH: jax.Array,
    positions_BP: jax.Array,
    valid_BP: jax.Array,
    window,
    scale: float,
    softcap: float | None,
) -> Stats:
    """Statistics over a prefix shared by each run of G = R / B consecutive rows: every
    valid prefix key is visible (the prefix precedes the rows' own slots), within the
    window. The G rows' queries are extra query heads of one dot per (prompt, kv head)."""
    R, T, K, E, H = q_RTKEH.shape
    B = k_BKPH.shape[0]
    G = R // B
    q_BKMH = q_RTKEH.reshape(B, G, T, K, E, H).transpose(0, 3, 1, 2, 4, 5)
    q_BKMH = q_BKMH.reshape(B, K, G * T * E, H)
    scores_BKMP = attention_dots.scores(q_BKMH, k_BKPH.astype(q_RTKEH.dtype))
    scores_BKGTEP = _scores(scores_BKMP.reshape(B, K, G, T, E, -1), scale, softcap)
    visible = valid_BP[:, None, None, None, None, :]
    if window is not None:
        q_positions_BGT = q_positions_RT.reshape(B, G, T)
        near_BGTP = q_positions_BGT[..., None] - positions_BP[:, None, None, :] < window
        visible = visible & near_BGTP[:, None, :, :, None, :]
    m, s, out = _block(scores_BKGTEP, visible, v_BKPH, q_RTKEH.dtype)

    def rows(x):  # [B, K, G, T, E, ...] -> [R, K, T, E, ...]
        x = jnp.moveaxis(x, 2, 1)
        return x.reshape(R, *x.shape[2:])

    return Stats(rows(m), rows(s), rows(out))
