"""Attention over a shared prompt prefix and chunked own slots (models/attention.py):
against a dense softmax over the concatenated keys, and through the decoder (every
family, unrolled and scanned) against a forward without a cache."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hf_reference import tiny_family
from tiny_rl import fast_compile

from rlvr_jax.models import Decoder
from rlvr_jax.models import attention as attn
from rlvr_jax.models.decoder import left_padded_positions
from rlvr_jax.models.prefill import prefill_shared

FAMILIES = ["llama", "qwen2", "qwen3", "gemma3"]


@pytest.fixture(autouse=True, scope="module")
def _fast_compile():
    with fast_compile():
        yield


def _dense_reference(q, q_pos, q_slots, pk, pv, p_pos, p_valid, k, v, pos, valid, window, cap):
    """Softmax over [prefix ++ own] keys for every row, written out plainly."""
    R, T, K, E, H = q.shape
    G = R // pk.shape[0]
    out = np.zeros((R, T, K, E, H))
    for r in range(R):
        b = r // G
        keys = np.concatenate([pk[b], k[r]], axis=1)  # [K, P + S, H]
        vals = np.concatenate([pv[b], v[r]], axis=1)
        for t in range(T):
            seen_p = p_valid[b] & (q_pos[r, t] - p_pos[b] < window)
            slots = np.arange(k.shape[2])
            seen_o = valid[r] & (slots <= q_slots[t]) & (q_pos[r, t] - pos[r] < window)
            seen = np.concatenate([seen_p, seen_o])
            for kh in range(K):
                s = keys[kh] @ q[r, t, kh].T * 0.125  # [P + S, E]
                s = np.tanh(s / cap) * cap
                s = np.where(seen[:, None], s, attn.MASKED)
                p = np.exp(s - s.max(axis=0))
                p /= p.sum(axis=0)
                out[r, t, kh] = p.T @ vals[kh]
    return out


@pytest.mark.parametrize("T", [1, 3])
def test_prefix_and_chunked_own_equal_dense_softmax(T):
    rng = np.random.default_rng(0)
    B, G, K, E, H, P, S, chunk = 2, 3, 2, 2, 4, 5, 8, 4
    R = B * G
    q = rng.normal(size=(R, T, K, E, H)).astype(np.float32)
    pk, pv = (rng.normal(size=(B, K, P, H)).astype(np.float32) for _ in range(2))
    k, v = (rng.normal(size=(R, K, S, H)).astype(np.float32) for _ in range(2))
    p_valid = np.array([[0, 1, 1, 1, 1], [0, 0, 0, 1, 1]], bool)
    p_pos = np.maximum(np.cumsum(p_valid, axis=1) - 1, 0)
    filled = 6  # own slots [0, 6) written; this forward's T tokens are the last T
    valid = np.zeros((R, S), bool)
    valid[:, :filled] = rng.random((R, filled)) < 0.8
    valid[:, filled - T :] = True
    pos = p_valid.sum(1).repeat(G)[:, None] + np.arange(S)[None, :]
    q_slots = np.arange(filled - T, filled)
    q_pos = pos[:, filled - T : filled]
    window, cap = 4, 3.0
    args = dict(window=window, scale=0.125, softcap=cap)
    keys = (pk, pv, p_pos, p_valid, k, v, pos, valid)
    want = _dense_reference(q, q_pos, q_slots, *keys, window, cap)

    pre = attn.prefix_stats(jnp.asarray(q), q_pos, pk, pv, p_pos, p_valid, **args)
    own = attn.own_stats(jnp.asarray(q), q_pos, q_slots, k, v, pos, valid, 0, **args)
    got = attn.finish(attn.merge(pre, own), jnp.float32)
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)

    def read(first):
        return tuple(jax.lax.dynamic_slice_in_dim(jnp.asarray(x), first, chunk, 2) for x in (k, v))

    chunked = attn.chunked_own_stats(
        jnp.asarray(q), q_pos, q_slots, read, pos, valid, jnp.int32(filled), chunk, pre, **args
    )
    np.testing.assert_allclose(np.asarray(attn.finish(chunked, jnp.float32)), want, atol=1e-5)


def test_merge_with_nothing_is_identity():
    rng = np.random.default_rng(1)
    q = jnp.asarray(rng.normal(size=(2, 1, 1, 2, 4)), jnp.float32)
    k, v = (jnp.asarray(rng.normal(size=(2, 1, 3, 4)), jnp.float32) for _ in range(2))
    valid = np.ones((2, 3), bool)
    pos = np.arange(3)[None].repeat(2, 0)
    own = attn.own_stats(q, pos[:, 2:], np.array([2]), k, v, pos, valid, 0, None, 0.5, None)
    merged = attn.merge(attn.empty_stats(q), own)
    for a, b in zip(merged, own, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_chunked_read_needs_whole_chunks():
    q = jnp.zeros((1, 1, 1, 1, 2))
    with pytest.raises(ValueError, match="not a multiple of 4"):
        attn.chunked_own_stats(
            q, jnp.zeros((1, 1), jnp.int32), jnp.zeros(1, jnp.int32), None,
            jnp.zeros((1, 6), jnp.int32), jnp.zeros((1, 6), bool), jnp.int32(1), 4,
            attn.empty_stats(q), None, 1.0, None,
        )  # fmt: skip


@pytest.fixture(scope="module", params=FAMILIES)
def family(request, tmp_path_factory):
    return tiny_family(request.param, tmp_path_factory)


def _rows(seed, G, L, vocab):
    """Two left-padded prompts and G completions each (row r continues prompt r // G)."""
    rng = np.random.default_rng(seed)
    prompt_lengths, P = (5, 3), 6
    tokens_BP = np.zeros((2, P), np.int32)
    mask_BP = np.zeros((2, P), np.int32)
    for b, n in enumerate(prompt_lengths):
        tokens_BP[b, P - n :] = rng.integers(3, vocab, n)
        mask_BP[b, P - n :] = 1
    completions_RL = rng.integers(3, vocab, (2 * G, L)).astype(np.int32)
    return tokens_BP, mask_BP, completions_RL


@pytest.mark.parametrize("scan", [False, True], ids=["unrolled", "scanned"])
def test_shared_prefix_decoder_equals_uncached_forward(family, scan):
    """Completions after a shared prefix, run in one forward (the train step) and decoded
    one token at a time with chunked reads (the sampler): the logits of a plain forward
    over each row's whole sequence, within 1e-5."""
    name, cfg, params = family
    G, L, chunk = 3, 7, 4
    tokens_BP, mask_BP, completions_RL = _rows(0, G, L, cfg.vocab_size)
    P = tokens_BP.shape[1]
    model = Decoder(cfg, scan_layers=scan)
    variables = {"params": params}

    rows_RT = np.concatenate([tokens_BP.repeat(G, 0), completions_RL], axis=1)
    mask_RT = np.concatenate([mask_BP.repeat(G, 0), np.ones_like(completions_RL)], axis=1)
    want, _ = model.apply(variables, rows_RT, left_padded_positions(mask_RT), mask_RT)
    want = np.asarray(want)[:, P:]

    positions_RL = mask_BP.sum(1).repeat(G)[:, None] + np.arange(L)[None, :]
    own_slots = -(-L // chunk) * chunk
    _, cache = prefill_shared(model, variables, tokens_BP, mask_BP, own_slots, G)
    ones_RL = np.ones_like(positions_RL)
    whole, _ = model.apply(variables, completions_RL, positions_RL, ones_RL, cache)
    np.testing.assert_allclose(np.asarray(whole), want, atol=1e-5, err_msg=name)

    _, cache = prefill_shared(model, variables, tokens_BP, mask_BP, own_slots, G, chunk)
    step = jax.jit(lambda tok, pos, c: model.apply(variables, tok, pos, jnp.ones_like(tok), c))
    stepped = []
    for t in range(L):
        logits, cache = step(completions_RL[:, t : t + 1], positions_RL[:, t : t + 1], cache)
        stepped.append(np.asarray(logits)[:, 0])
    np.testing.assert_allclose(np.stack(stepped, 1), want, atol=1e-5, err_msg=name)


def test_query_chunks_equal_one_block(family, monkeypatch):
    """Queries attended in chunks (each rematerialized; the last one ragged): the same
    logits (1e-5) and parameter gradients (within 1e-5 of each leaf's largest entry: the
    chunked sums are reordered float32 sums of thousands of terms; a wrong mask or a
    dropped chunk moves entries by their own size) as one block. Three forwards: the
    completions into a fresh cache of their own length after a shared prefix and a plain
    prompt forward (causal chunks, which skip the later slots), and the completions into a
    cache with more slots than tokens (`lax.map` chunks over every slot). Padding
    positions are left out: a query with no visible key averages whatever keys its chunk
    reads."""
    name, cfg, params = family
    G, L = 2, 7
    tokens_BP, mask_BP, completions_RL = _rows(1, G, L, cfg.vocab_size)
    model = Decoder(cfg)
    positions_RL = mask_BP.sum(1).repeat(G)[:, None] + np.arange(L)[None, :]
    ones_RL = np.ones_like(positions_RL)
    weights = np.random.default_rng(2).normal(size=(2 * G, L, cfg.vocab_size))
    valid_BP1 = mask_BP[..., None]

    def loss(params):
        variables = {"params": params}
        outs = []
        for own_slots in (L, L + 2):
            _, cache = prefill_shared(model, variables, tokens_BP, mask_BP, own_slots, G)
            logits, _ = model.apply(variables, completions_RL, positions_RL, ones_RL, cache)
            outs.append(logits)
        plain, _ = model.apply(variables, tokens_BP, left_padded_positions(mask_BP), mask_BP)
        plain = plain * valid_BP1
        total = sum(jnp.sum(logits * weights) for logits in outs) + jnp.sum(plain**2) * 1e-3
        return total, (*outs, plain)

    results = {}
    for chunk in (attn.QUERY_CHUNK, 3):
        monkeypatch.setattr(attn, "QUERY_CHUNK", chunk)
        results[chunk] = jax.grad(loss, has_aux=True)(params)
    (g_whole, whole), (g_chunk, chunked) = results.values()
    for a, b in zip(chunked, whole, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, err_msg=name)
    for a, b in zip(jax.tree.leaves(g_chunk), jax.tree.leaves(g_whole), strict=True):
        scale = max(1.0, float(np.abs(b).max()))
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), 0, 1e-5 * scale, err_msg=name)
