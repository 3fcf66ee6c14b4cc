"""KV-cache sampler: exactness against full forwards, logprobs, sampling statistics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlvr_jax.models import Decoder, DecoderConfig, RopeConfig, left_padded_positions
from rlvr_jax.models.lora import LoraConfig, init_lora
from rlvr_jax.sampling import SamplingConfig, SpecialTokens, generate, generate_padded
from rlvr_jax.sampling.filters import sampling_logits
from rlvr_jax.sampling.generate import _inverse_cdf_sample

VOCAB = 67
PROMPTS = [[5, 9, 11, 3, 20, 7, 8], [4, 4, 30], [12, 40, 41, 42, 43], [60]]
NO_STOPS = SpecialTokens(stop_token_ids=(), pad_token_id=0)
KEY = jax.random.key(5)


def sampling(**overrides) -> SamplingConfig:
    """A SamplingConfig with every field explicit: one plain sample, no filters, no stops."""
    values = {
        "num_samples": 1,
        "max_new_tokens": 8,
        "temperature": 1.0,
        "top_k": 0,
        "top_p": 1.0,
        "extra_stop_token_ids": (),
        "prompt_buckets": (8, 16),
    }
    return SamplingConfig(**{**values, **overrides})


@pytest.fixture(scope="module")
def tiny():
    cfg = DecoderConfig(
        model_type="llama",
        vocab_size=VOCAB,
        hidden_size=30,
        intermediate_size=43,
        num_layers=2,
        num_heads=3,
        num_kv_heads=1,
        head_dim=10,
        rms_norm_eps=1e-6,
        rope=RopeConfig(theta=10000.0),
        layer_windows=(None, None),
        tie_embeddings=False,
    )
    model = Decoder(cfg)
    dummy = jnp.zeros((1, 4), jnp.int32)
    params = model.init(jax.random.key(0), dummy, dummy, jnp.ones_like(dummy))["params"]
    # Larger output weights give peaked, decisive distributions (no argmax near-ties).
    params["lm_head"]["kernel"] = params["lm_head"]["kernel"] * 40.0
    return model, params


def _full_forward_logits(model, variables, tokens_BT, mask_BT):
    logits, _ = model.apply(variables, tokens_BT, left_padded_positions(mask_BT), mask_BT)
    return logits


def _teacher_forced_logprobs(model, variables, out):
    """log_softmax [R, L, V] of one cache-free forward over each row's prompt + completion,
    at the positions that predict the completion's tokens."""
    tokens = jnp.concatenate([out.prompt_ids, out.ids], axis=1)
    mask = jnp.concatenate([out.prompt_mask, out.mask], axis=1)
    logits = _full_forward_logits(model, variables, tokens, mask)
    P = out.prompt_ids.shape[1]
    return jax.nn.log_softmax(logits[:, P - 1 : -1], axis=-1)


def test_greedy_equals_argmax_of_full_forwards(tiny):
    model, params = tiny
    L = 12
    cfg = sampling(max_new_tokens=L, temperature=0.0, prompt_buckets=(8, 16))
    out = generate(model, {"params": params}, PROMPTS, jax.random.key(1), cfg, NO_STOPS)
    tokens = np.asarray(out.prompt_ids)
    mask = np.asarray(out.prompt_mask)
    for _ in range(L):  # step by step, no cache, whole sequence every time
        logits = _full_forward_logits(model, {"params": params}, tokens, mask)
        nxt = np.asarray(jnp.argmax(logits[:, -1], axis=-1))[:, None]
        tokens = np.concatenate([tokens, nxt], axis=1)
        mask = np.concatenate([mask, np.ones_like(nxt)], axis=1)
    np.testing.assert_array_equal(np.asarray(out.ids), tokens[:, -L:])
    assert np.all(np.asarray(out.mask) == 1)
    assert np.all(np.asarray(out.truncated))


def test_policy_logprobs_equal_teacher_forced(tiny):
    model, params = tiny
    cfg = sampling(max_new_tokens=10, temperature=0.7, top_k=20, num_samples=3, prompt_buckets=(8,))
    out = generate(model, {"params": params}, PROMPTS, jax.random.key(2), cfg, NO_STOPS)
    logp = _teacher_forced_logprobs(model, {"params": params}, out)
    teacher = jnp.take_along_axis(logp, out.ids[..., None], axis=-1)[..., 0]
    teacher = jnp.where(out.mask == 1, teacher, 0.0)
    np.testing.assert_allclose(np.asarray(out.logprobs), np.asarray(teacher), atol=1e-4)
    # The sampled distribution is sharper (T < 1, top-k), never less likely for its own draws.
    assert np.asarray(out.sampling_logprobs).shape == np.asarray(out.logprobs).shape


def test_samples_per_prompt_share_the_prompt(tiny):
    model, params = tiny
    cfg = sampling(max_new_tokens=6, temperature=1.0, num_samples=4, prompt_buckets=(8,))
    out = generate(model, {"params": params}, PROMPTS, jax.random.key(3), cfg, NO_STOPS)
    ids = np.asarray(out.ids).reshape(len(PROMPTS), 4, -1)
    prompt_ids = np.asarray(out.prompt_ids).reshape(len(PROMPTS), 4, -1)
    assert np.all(prompt_ids == prompt_ids[:, :1])
    assert any(len({tuple(r) for r in group}) > 1 for group in ids), "samples never differ"


@pytest.mark.parametrize("source", ["tokenizer", "extra", "both"])
def test_stop_tokens_end_rows_and_mask_the_rest(tiny, source):
    """Stop ids are the tokenizer's and `extra_stop_token_ids`, together; pad fills the rest."""
    model, params = tiny
    greedy = sampling(max_new_tokens=12, temperature=0.0, prompt_buckets=(8,))
    free = generate(model, {"params": params}, PROMPTS, jax.random.key(0), greedy, NO_STOPS)
    free_ids = np.asarray(free.ids)
    # Use the tokens greedy emits at steps 2 and 4 of rows 0 and 1 as stop tokens.
    stops = (int(free_ids[0, 2]), int(free_ids[1, 4]))
    tokenizer_stops, extra_stops = {
        "tokenizer": (stops, ()),
        "extra": ((), stops),
        "both": (stops[:1], stops[1:]),
    }[source]
    pad = 0 if source != "both" else VOCAB - 1  # a pad id that is not 0 as well
    cfg = sampling(
        max_new_tokens=12,
        temperature=0.0,
        extra_stop_token_ids=extra_stops,
        prompt_buckets=(8,),
    )
    tokens = SpecialTokens(stop_token_ids=tokenizer_stops, pad_token_id=pad)
    out = generate(model, {"params": params}, PROMPTS, jax.random.key(0), cfg, tokens)
    ids, mask = np.asarray(out.ids), np.asarray(out.mask)
    assert not np.all(np.asarray(out.truncated)), "no row stopped"
    for row in range(len(PROMPTS)):
        hits = np.flatnonzero(np.isin(free_ids[row], stops))
        expected_len = hits[0] + 1 if hits.size else 12
        assert out.lengths[row] == expected_len
        assert bool(out.truncated[row]) == (hits.size == 0)
        np.testing.assert_array_equal(ids[row, :expected_len], free_ids[row, :expected_len])
        assert np.all(mask[row, :expected_len] == 1) and np.all(mask[row, expected_len:] == 0)
        assert np.all(ids[row, expected_len:] == pad)
        assert np.all(np.asarray(out.logprobs)[row, expected_len:] == 0)


def test_lora_variables_sample_the_adapted_policy(tiny):
    """The sampler runs the variables it is given: a `lora` collection changes the policy,
    and the policy it samples is the adapted forward's (`x @ W + s * (x @ a) @ b`): the
    greedy tokens are that forward's argmaxes and the logprobs its teacher-forced ones."""
    model, params = tiny
    cfg = sampling(max_new_tokens=8, temperature=0.0, prompt_buckets=(8,))
    lora = init_lora(
        params, LoraConfig(rank=2, alpha=2.0, targets=("q", "v", "up"), rslora=False), KEY
    )
    lora = jax.tree.map(lambda x: x + 0.5 * jax.random.normal(KEY, x.shape, x.dtype), lora)
    variables = {"params": params, "lora": lora}
    adapted = generate(model, variables, PROMPTS, KEY, cfg, NO_STOPS)
    base = generate(model, {"params": params}, PROMPTS, KEY, cfg, NO_STOPS)
    logp = _teacher_forced_logprobs(model, variables, adapted)
    np.testing.assert_array_equal(np.asarray(adapted.ids), np.asarray(jnp.argmax(logp, -1)))
    teacher = jnp.take_along_axis(logp, adapted.ids[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(np.asarray(adapted.logprobs), np.asarray(teacher), atol=1e-4)
    assert np.any(np.asarray(adapted.ids) != np.asarray(base.ids)), "LoRA changed nothing"


def test_same_bucket_does_not_recompile(tiny):
    model, params = tiny
    cfg = sampling(max_new_tokens=4, temperature=1.0, prompt_buckets=(8, 16))
    generate(model, {"params": params}, [[1, 2, 3]], jax.random.key(0), cfg, NO_STOPS)
    before = generate_padded._cache_size()
    generate(model, {"params": params}, [[1, 2, 3, 4, 5, 6]], jax.random.key(1), cfg, NO_STOPS)
    generate(model, {"params": params}, [[7]], jax.random.key(2), cfg, NO_STOPS)
    assert generate_padded._cache_size() == before
    generate(
        model, {"params": params}, [list(range(1, 12))], jax.random.key(3), cfg, NO_STOPS
    )  # bucket 16
    assert generate_padded._cache_size() == before + 1


def test_prompt_longer_than_buckets_is_a_clear_error(tiny):
    model, params = tiny
    cfg = sampling(max_new_tokens=4, prompt_buckets=(4,))
    with pytest.raises(ValueError, match="prompt_buckets"):
        generate(model, {"params": params}, [[1, 2, 3, 4, 5]], jax.random.key(0), cfg, NO_STOPS)


def test_bfloat16_greedy_runs_and_mostly_agrees(tiny):
    model, params = tiny
    cfg = sampling(max_new_tokens=8, temperature=0.0, prompt_buckets=(8,))
    p16 = jax.tree.map(lambda x: x.astype(jnp.bfloat16), params)
    a = np.asarray(
        generate(model, {"params": params}, PROMPTS, jax.random.key(0), cfg, NO_STOPS).ids
    )
    b = np.asarray(generate(model, {"params": p16}, PROMPTS, jax.random.key(0), cfg, NO_STOPS).ids)
    assert (a[:, :2] == b[:, :2]).mean() >= 0.75


# --- sampling statistics for a fixed logit vector -----------------------------------------

LOGITS = np.log(np.array([0.30, 0.25, 0.15, 0.12, 0.08, 0.05, 0.03, 0.02]))
DRAWS = 40_000


def _empirical(cfg: SamplingConfig, block: int = 256) -> np.ndarray:
    logits = jnp.broadcast_to(jnp.asarray(LOGITS, jnp.float32), (DRAWS, LOGITS.size))
    probs = jax.nn.softmax(sampling_logits(logits, cfg), axis=-1)
    uniforms = jax.random.uniform(jax.random.key(42), (DRAWS, 2))
    tokens = _inverse_cdf_sample(probs, uniforms, block)
    return np.bincount(np.asarray(tokens), minlength=LOGITS.size) / DRAWS


def _target(temperature=1.0, top_k=0, top_p=1.0) -> np.ndarray:
    p = np.exp(LOGITS / temperature)
    p /= p.sum()
    order = np.argsort(-p)
    keep = np.zeros_like(p, bool)
    mass = 0.0
    for rank, i in enumerate(order):
        if (top_k and rank >= top_k) or mass >= top_p:
            break
        keep[i] = True
        mass += p[i]
    q = np.where(keep, p, 0.0)
    return q / q.sum()


@pytest.mark.parametrize(
    "temperature, top_k, top_p, block",
    [
        (1.0, 0, 1.0, 256),
        (0.5, 0, 1.0, 256),
        (2.0, 0, 1.0, 256),
        (1.0, 3, 1.0, 256),
        (1.0, 0, 0.6, 256),
        (0.8, 5, 0.7, 256),
        # Blocks of 3 over 8 tokens: the two-level draw, a padded last block, and (top-k)
        # whole blocks of zero weight.
        (1.0, 0, 1.0, 3),
        (1.0, 3, 1.0, 3),
        (0.8, 5, 0.7, 3),
    ],
)
def test_sampling_frequencies_match_target(temperature, top_k, top_p, block):
    cfg = sampling(max_new_tokens=1, temperature=temperature, top_k=top_k, top_p=top_p)
    empirical, target = _empirical(cfg, block), _target(temperature, top_k, top_p)
    assert np.all(empirical[target == 0] == 0), "a filtered-out token was sampled"
    # Chi-square goodness of fit over the kept tokens; 99.9% critical values for df <= 7.
    kept = target > 0
    chi2 = DRAWS * np.sum((empirical[kept] - target[kept]) ** 2 / target[kept])
    critical = {1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47, 5: 20.52, 6: 22.46, 7: 24.32}
    assert chi2 < critical[max(int(kept.sum()) - 1, 1)], (chi2, empirical, target)
