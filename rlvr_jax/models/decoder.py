"""One configurable Flax decoder for Llama/SmolLM2, Qwen2/2.5, Qwen3 and Gemma 3 (text).

Params are a plain nested dict (kernels are [in, out]):

    embed/embedding [V, D]
    layers_{i}/input_norm/scale [D]
    layers_{i}/attn/{q,k,v}_proj/kernel [D, heads*H]   (+ bias for Qwen2)
    layers_{i}/attn/o_proj/kernel [N*H, D]
    layers_{i}/attn/{q,k}_norm/scale [H]                 (Qwen3, Gemma 3)
    layers_{i}/post_attn_norm/scale [D]                  (Gemma 3)
    layers_{i}/pre_mlp_norm/scale [D]
    layers_{i}/post_mlp_norm/scale [D]                   (Gemma 3)
    layers_{i}/mlp/{gate,up}_proj/kernel [D, F], mlp/down_proj/kernel [F, D]
    final_norm/scale [D]
    lm_head/kernel [D, V]                                (untied only)

LoRA adapters live in a separate variable collection `lora` that mirrors these module
paths (`layers_0/attn/q_proj/{a [in, r], b [r, out]}`); a projection with an adapter
computes `x @ W + lora_scale * (x @ a) @ b`. Without the collection the model is the base.

Shape letters: see `rlvr_jax.models.config.DecoderConfig`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.ad_checkpoint import checkpoint_name
from jax.sharding import NamedSharding

from rlvr_jax.models import attention
from rlvr_jax.models.attention import KeyLayout, LayerKV
from rlvr_jax.models.config import DecoderConfig
from rlvr_jax.models.kv_cache import KVCache
from rlvr_jax.models.layer_stack import STACKED, is_stacked, stack_layers
from rlvr_jax.models.lora_matmul import lora_delta
from rlvr_jax.models.quantization import QuantizedKernel
from rlvr_jax.models.rope import apply_rope, inverse_frequencies

# The window of a full-attention layer when windows are per-layer arrays (scanned layers).
_NO_WINDOW = jnp.iinfo(jnp.int32).max

# Names of the activations that the `save_*` remat policies keep (`checkpoint_name`).
ATTENTION_OUT, MLP_GATE, MLP_UP = "attention_out", "mlp_gate", "mlp_up"
QUERY, KEY, VALUE = "query", "key", "value"  # q and k after any q/k norm and rope


class RMSNorm(nn.Module):
    eps: float
    gemma: bool  # scale by (1 + w) and cast after the product, as Gemma does

    @nn.compact
    def __call__(self, x):
        init = nn.initializers.zeros if self.gemma else nn.initializers.ones
        scale = self.param("scale", init, (x.shape[-1],), jnp.float32)
        x32 = x.astype(jnp.float32)
        normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        if self.gemma:
            return (normed * (1.0 + scale.astype(jnp.float32))).astype(x.dtype)
        return scale.astype(x.dtype) * normed.astype(x.dtype)


@jax.checkpoint
def quantized_matmul(x: jax.Array, kernel: QuantizedKernel) -> jax.Array:
    """`x @ dequantize(kernel)`; `jax.checkpoint` makes the backward recompute the float
    kernel from the codes instead of saving it as a residual (LoRA needs `dL/dx = g @ W^T`,
    not `dL/dW`).

    Measured on XLA:CPU (BUILD_NOTES, quantized base): in an unrolled layer stack the
    dequantized kernels of all layers are allocated at once (8 layers of 16 MB: 128 MB of
    temporaries, with or without an optimization barrier tying each to its input), while a
    `lax.scan` over stacked layers holds one (16 MB). The resident-memory saving of a
    quantized base therefore needs the scanned decoder (`model.scan_layers`, issue 16).
    """
    return x @ kernel.dequantize(x.dtype)


class Dense(nn.Module):
    """`x @ kernel (+ bias)`, plus a LoRA update when the `lora` collection has one. The
    kernel may be a `quantization.QuantizedKernel` (a quantized frozen base)."""

    features: int
    use_bias: bool = False
    lora_scale: float = 1.0

    @nn.compact
    def __call__(self, x):
        if self.has_variable("params", "kernel"):
            kernel = self.get_variable("params", "kernel")
        else:
            init = nn.initializers.normal(0.02)
            kernel = self.param("kernel", init, (x.shape[-1], self.features), jnp.float32)
        if isinstance(kernel, QuantizedKernel):  # a quantized base: dequantized per call
            y = quantized_matmul(x, kernel)
        else:
            y = x @ kernel.astype(x.dtype)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(x.dtype)
        if self.has_variable("lora", "a"):
            a = self.get_variable("lora", "a").astype(x.dtype)
            b = self.get_variable("lora", "b").astype(x.dtype)
            y = y + lora_delta(x, a, b, self.lora_scale)
        return y


def layer_constants(cfg: DecoderConfig, layer: int) -> tuple[np.ndarray, int | None]:
    """A layer's rope inverse frequencies [H/2] and attention window (None: full)."""
    return inverse_frequencies(cfg.rope_for_layer(layer), cfg.head_dim), cfg.layer_windows[layer]


def stacked_layer_constants(cfg: DecoderConfig) -> tuple[np.ndarray, np.ndarray | None]:
    """`layer_constants` of every layer, stacked for a scan: [L, H/2] and [L] (or None
    when no layer has a window)."""
    consts = [layer_constants(cfg, i) for i in range(cfg.num_layers)]
    inv_freq_LH = np.stack([c[0] for c in consts])
    if all(c[1] is None for c in consts):
        return inv_freq_LH, None
    windows_L = np.array([_NO_WINDOW if c[1] is None else c[1] for c in consts], np.int32)
    return inv_freq_LH, windows_L


class Attention(nn.Module):
    cfg: DecoderConfig
    lora_scale: float

    @nn.compact
    def __call__(self, x_BTD, keys: KeyLayout, kv: LayerKV | None, consts):
        """`kv`: None (the keys are this forward's tokens) or this layer's cache, which
        receives this forward's keys and values; returns the output and the written
        `(k, v)` (None without a cache). `consts`: `layer_constants` (traced under a scan).
        """
        cfg = self.cfg
        inv_freq, window = consts
        B, T, _ = x_BTD.shape
        N, K, H = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim

        def proj(name, heads):
            return Dense(heads * H, cfg.qkv_bias, self.lora_scale, name=name)(x_BTD)

        q_BTNH = proj("q_proj", N).reshape(B, T, N, H)
        k_BTKH = proj("k_proj", K).reshape(B, T, K, H)
        v_BTKH = proj("v_proj", K).reshape(B, T, K, H)
        if cfg.qk_norm:
            q_BTNH = RMSNorm(cfg.rms_norm_eps, cfg.gemma_norms, name="q_norm")(q_BTNH)
            k_BTKH = RMSNorm(cfg.rms_norm_eps, cfg.gemma_norms, name="k_norm")(k_BTKH)
        q_BTNH = apply_rope(q_BTNH, keys.q_positions_RT, inv_freq)
        k_BTKH = apply_rope(k_BTKH, keys.q_positions_RT, inv_freq)
        q_BTNH = checkpoint_name(q_BTNH, QUERY)
        k_BTKH = checkpoint_name(k_BTKH, KEY)
        v_BTKH = checkpoint_name(v_BTKH, VALUE)

        k_BKTH = k_BTKH.transpose(0, 2, 1, 3)
        v_BKTH = v_BTKH.transpose(0, 2, 1, 3)
        if kv is None:  # no cache: keys are the current tokens
            k_BKSH, v_BKSH, written = k_BKTH, v_BKTH, None
        elif kv.layer is None:
            k_BKSH = jax.lax.dynamic_update_slice_in_dim(
                kv.k, k_BKTH.astype(kv.k.dtype), kv.start, axis=2
            )
            v_BKSH = jax.lax.dynamic_update_slice_in_dim(
                kv.v, v_BKTH.astype(kv.v.dtype), kv.start, axis=2
            )
            written = (k_BKSH, v_BKSH)
        else:  # stacked: write the new tokens in place; this layer is read below
            zero = jnp.zeros((), jnp.int32)
            at = (kv.layer, zero, zero, kv.start, zero)
            k_cache = jax.lax.dynamic_update_slice(kv.k, k_BKTH[None].astype(kv.k.dtype), at)
            v_cache = jax.lax.dynamic_update_slice(kv.v, v_BKTH[None].astype(kv.v.dtype), at)
            written = (k_cache, v_cache)

        # Grouped-query attention: query head n uses kv head n // E, E = N // K. The dots
        # batch over (rows, K) and keep the cache's [B, K, S, H] layout (no transpose of it).
        q_BTKEH = q_BTNH.reshape(B, T, K, N // K, H)
        opts = dict(window=window, scale=cfg.scale, softcap=cfg.attn_logit_softcap)
        decoding = kv is not None and keys.read_chunk and T == 1  # the filled slots only
        if kv is not None and kv.layer is not None and not decoding:
            k_BKSH = jax.lax.dynamic_index_in_dim(written[0], kv.layer, keepdims=False)
            v_BKSH = jax.lax.dynamic_index_in_dim(written[1], kv.layer, keepdims=False)

        def attend(q_BTKEH, q_positions_BT, q_slots_T, own_end=None):
            """Attention over the prefix and own slots [0, own_end) (None: all of them)."""
            stats = None
            if kv is not None and kv.prefix_k is not None:
                stats = attention.prefix_stats(
                    q_BTKEH,
                    q_positions_BT,
                    kv.prefix_k,
                    kv.prefix_v,
                    keys.prefix_positions_BP,
                    keys.prefix_valid_BP,
                    **opts,
                )
            own = (q_BTKEH, q_positions_BT, q_slots_T)
            if decoding:
                return attention.chunked_own_stats(
                    *own,
                    self._chunk_reader(kv, written, keys.read_chunk),
                    keys.positions_RS,
                    keys.valid_RS,
                    keys.filled,
                    keys.read_chunk,
                    attention.empty_stats(q_BTKEH) if stats is None else stats,
                    **opts,
                )
            block = attention.own_stats(
                *own,
                k_BKSH[:, :, :own_end],
                v_BKSH[:, :, :own_end],
                keys.positions_RS[:, :own_end],
                keys.valid_RS[:, :own_end],
                0,
                **opts,
            )
            return block if stats is None else attention.merge(stats, block)

        def attend_out(*queries):
            return attention.finish(attend(*queries), x_BTD.dtype)

        queries = (q_BTKEH, keys.q_positions_RT, keys.q_slots_T)
        if T > attention.QUERY_CHUNK:
            # T tokens written into T own slots start at slot 0 (the train step's and the
            # scorer's completions, a prompt's prefill): queries see no later slot.
            causal = k_BKSH.shape[2] == T
            out_BTKEH = attention.in_query_chunks(
                attend_out, *queries, attention.QUERY_CHUNK, causal
            )
        else:
            out_BTKEH = attend_out(*queries)
        out_BTD = checkpoint_name(out_BTKEH.reshape(B, T, N * H), ATTENTION_OUT)
        out_BTD = Dense(cfg.hidden_size, False, self.lora_scale, name="o_proj")(out_BTD)
        return out_BTD, written

    @staticmethod
    def _chunk_reader(kv: LayerKV, written, chunk: int):
        """`first_slot -> (k, v)` of `chunk` own slots of this layer's written cache."""
        k_cache, v_cache = written

        def read(first):
            if kv.layer is None:
                return tuple(jax.lax.dynamic_slice_in_dim(x, first, chunk, axis=2) for x in written)
            zero = jnp.zeros((), jnp.int32)
            at = (kv.layer, zero, zero, first, zero)
            size = (1, *k_cache.shape[1:3], chunk, k_cache.shape[4])
            return tuple(jax.lax.dynamic_slice(x, at, size)[0] for x in (k_cache, v_cache))

        return read


class MLP(nn.Module):
    cfg: DecoderConfig
    lora_scale: float

    @nn.compact
    def __call__(self, x_BTD):
        cfg = self.cfg
        gate = Dense(cfg.intermediate_size, False, self.lora_scale, name="gate_proj")(x_BTD)
        up = Dense(cfg.intermediate_size, False, self.lora_scale, name="up_proj")(x_BTD)
        gate, up = checkpoint_name(gate, MLP_GATE), checkpoint_name(up, MLP_UP)
        if cfg.mlp_activation == "silu":
            act = jax.nn.silu(gate)
        else:
            act = jax.nn.gelu(gate, approximate=True)
        return Dense(cfg.hidden_size, False, self.lora_scale, name="down_proj")(act * up)


class DecoderLayer(nn.Module):
    cfg: DecoderConfig
    lora_scale: float

    @nn.compact
    def __call__(self, x_BTD, keys: KeyLayout, kv: LayerKV | None, consts):
        cfg = self.cfg

        def norm(name):
            return RMSNorm(cfg.rms_norm_eps, cfg.gemma_norms, name=name)

        h = norm("input_norm")(x_BTD)
        h, kv = Attention(cfg, self.lora_scale, name="attn")(h, keys, kv, consts)
        if cfg.gemma_norms:
            h = norm("post_attn_norm")(h)
        x_BTD = x_BTD + h
        h = MLP(cfg, self.lora_scale, name="mlp")(norm("pre_mlp_norm")(x_BTD))
        if cfg.gemma_norms:
            h = norm("post_mlp_norm")(h)
        return x_BTD + h, kv


REMAT_POLICIES = {
    "none": None,
    "full": jax.checkpoint_policies.nothing_saveable,
    "save_dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    "save_attention": jax.checkpoint_policies.save_only_these_names(ATTENTION_OUT),
    "save_attention_mlp": jax.checkpoint_policies.save_only_these_names(
        ATTENTION_OUT, MLP_GATE, MLP_UP
    ),
    "save_qkv_attention_mlp": jax.checkpoint_policies.save_only_these_names(
        QUERY, KEY, VALUE, ATTENTION_OUT, MLP_GATE, MLP_UP
    ),
}


def check_remat(remat: str) -> None:
    """Validates an `rl.remat` name."""
    if remat not in REMAT_POLICIES:
        raise ValueError(f"rl.remat: unknown {remat!r}; choose one of {sorted(REMAT_POLICIES)}")


class Decoder(nn.Module):
    """`logits_BTV, cache = Decoder(cfg).apply(vars, tokens, positions, mask, cache)`.

    tokens_BT: int token ids. positions_BT: int positions (for a left-padded row, 0 at its
    first real token). mask_BT: 1 for real tokens, 0 for padding. cache: None for a plain
    causal forward over the given tokens, or a `KVCache` whose slots [end, end + T) receive
    these tokens; the returned cache has `end` advanced by T.
    """

    cfg: DecoderConfig
    lora_scale: float = 1.0
    # The mesh's row sharding (`parallel.batch_sharding`): every activation keeps its rows
    # there when their count divides the devices. Without it XLA's propagation, seeing
    # fsdp-sharded weights, may gather the batch instead of the weights (each device then
    # holds every row's activations; BUILD_NOTES, FSDP). None: placement is left to XLA.
    row_sharding: NamedSharding | None = None
    # Rematerialization of each layer in the backward (`rl.remat`, REMAT_POLICIES): 'none'
    # keeps every activation, 'full' recomputes the layer, 'save_dots' keeps only the
    # matmul outputs, 'save_attention' the attention output (so the replay skips the
    # attention), 'save_attention_mlp' also the MLP's gate and up, and
    # 'save_qkv_attention_mlp' also the query, key and value after rope (the replay then
    # runs the norms, the LoRA down-projections and the o-projection only). A training-only
    # setting: the train step differentiates a clone of the policy's model with it
    # (Policy.for_training); the sampler never uses it. Needs
    # `scan_layers`: only a scan makes the backward recompute one layer at a time. With
    # unrolled layers XLA:CPU scheduled the recomputations of all 30 layers together, and
    # 'full' then needed more memory than 'none' (32.0 vs 20.8 GB for 64 rows x 256
    # tokens; scanned: 2.8 GB; BUILD_NOTES).
    remat: str = "none"
    # One compiled layer body under `lax.scan` over the layers' params stacked on a leading
    # axis (`model.scan_layers`; layer_stack.py), instead of L unrolled copies: compiles
    # in a fraction of the time and keeps one layer's temporaries (a quantized base's
    # dequantized kernels) alive at a time. Same params in either form, same values.
    scan_layers: bool = False

    def _by_row(self, x):
        sharding = self.row_sharding
        # One device: nothing to place, and the constraint would still cut XLA's fusions.
        if sharding is None or sharding.num_devices == 1 or x.shape[0] % sharding.num_devices:
            return x
        return jax.lax.with_sharding_constraint(x, sharding)

    def setup(self):
        cfg = self.cfg
        self.embed = self.param(
            "embed",
            lambda rng: {
                "embedding": nn.initializers.normal(0.02)(
                    rng, (cfg.vocab_size, cfg.hidden_size), jnp.float32
                )
            },
        )
        check_remat(self.remat)
        if self.remat != "none" and not self.scan_layers:
            raise ValueError(
                f"rl.remat={self.remat!r} needs the scanned decoder (scan_layers=True; "
                "Policy.for_training sets it)"
            )
        self.layers = [
            DecoderLayer(cfg, self.lora_scale, name=f"layers_{i}") for i in range(cfg.num_layers)
        ]
        self.final_norm = RMSNorm(cfg.rms_norm_eps, cfg.gemma_norms)
        if not cfg.tie_embeddings:
            self.lm_head = self.param(
                "lm_head",
                lambda rng: {
                    "kernel": nn.initializers.normal(0.02)(
                        rng, (cfg.hidden_size, cfg.vocab_size), jnp.float32
                    )
                },
            )

    def __call__(self, tokens_BT, positions_BT, mask_BT, cache: KVCache | None = None):
        hidden_BTD, cache = self.hidden_states(tokens_BT, positions_BT, mask_BT, cache)
        return self.logits(hidden_BTD), cache

    def hidden_states(self, tokens_BT, positions_BT, mask_BT, cache: KVCache | None = None):
        """Final-normed hidden states [B, T, D] (apply `logits` to the rows that need them)."""
        cfg = self.cfg
        embedding = self.embed["embedding"]
        x_BTD = self._by_row(jnp.take(embedding, tokens_BT, axis=0))
        if cfg.embed_scale:
            x_BTD = x_BTD * jnp.asarray(cfg.hidden_size**0.5, jnp.float32).astype(x_BTD.dtype)
        self.sow("intermediates", "hidden_states", x_BTD)
        mask_BT = mask_BT.astype(bool)
        T = tokens_BT.shape[1]
        positions_BT = positions_BT.astype(jnp.int32)
        if cache is None:
            start = 0
            k_positions_BS, k_valid_BS = positions_BT, mask_BT
        else:
            start = cache.end
            k_positions_BS = jax.lax.dynamic_update_slice_in_dim(
                cache.positions_BS, positions_BT, start, axis=1
            )
            k_valid_BS = jax.lax.dynamic_update_slice_in_dim(cache.valid_BS, mask_BT, start, axis=1)
        prefix = None if cache is None else cache.prefix
        keys = KeyLayout(
            q_positions_RT=positions_BT,
            q_slots_T=start + jnp.arange(T),
            positions_RS=k_positions_BS,
            valid_RS=k_valid_BS,
            filled=jnp.asarray(start + T, jnp.int32),
            prefix_positions_BP=None if prefix is None else prefix.positions_BP,
            prefix_valid_BP=None if prefix is None else prefix.valid_BP,
            read_chunk=0 if cache is None else cache.read_chunk,
        )
        if self.scan_layers and not self.is_initializing():
            x_BTD, new_k, new_v = self._scanned_layers(x_BTD, keys, cache, start)
        else:
            x_BTD, new_k, new_v = self._unrolled_layers(x_BTD, keys, cache, start)
        x_BTD = self.final_norm(x_BTD)
        if cache is not None:
            cache = cache.replace(
                k=new_k, v=new_v, positions_BS=k_positions_BS, valid_BS=k_valid_BS, end=start + T
            )
        return x_BTD, cache

    def _unrolled_layers(self, x_BTD, keys, cache, start):
        if cache is not None and cache.stacked:
            raise ValueError("a stacked KV cache needs the scanned decoder (scan_layers=True)")
        new_k, new_v = [], []
        for i, layer in enumerate(self.layers):
            kv = None
            if cache is not None:
                prefix = cache.prefix
                kv = LayerKV(
                    cache.k[i],
                    cache.v[i],
                    start,
                    prefix_k=None if prefix is None else prefix.k[i],
                    prefix_v=None if prefix is None else prefix.v[i],
                )
            x_BTD, kv = layer(x_BTD, keys, kv, layer_constants(self.cfg, i))
            x_BTD = self._by_row(x_BTD)
            self.sow("intermediates", "hidden_states", x_BTD)
            if kv is not None:
                new_k.append(kv[0])
                new_v.append(kv[1])
        return x_BTD, tuple(new_k), tuple(new_v)

    def _scanned_layers(self, x_BTD, keys, cache, start):
        """The layers as one `lax.scan` body over stacked params (and a stacked cache).

        The params may arrive stacked (the policy's base) or per layer (then stacked
        here, a copy per call); the LoRA tree is always stacked here (it is small).
        Intermediates are not sown on this path.
        """
        if cache is not None and not cache.stacked:
            raise ValueError("the scanned decoder needs a stacked KV cache (KVCache.empty)")
        params = self.variables["params"]
        layer_vars = {"params": (params if is_stacked(params) else stack_layers(params))[STACKED]}
        if "lora" in self.variables:
            layer_vars["lora"] = stack_layers(self.variables["lora"])[STACKED]
        inv_freq_LH, windows_L = stacked_layer_constants(self.cfg)
        layer = DecoderLayer(self.cfg, self.lora_scale, parent=None)
        # A decode step (T = 1, inside the sampler's loop) carries the whole cache and writes
        # its token in place. A longer forward (prefill, the train step's completions after
        # a shared prompt) scans the layers' caches as inputs and outputs instead: carried
        # through a differentiated scan, the cache's cotangent would be a full [L, ...]
        # array added to at every layer of the backward.
        in_place = cache is not None and x_BTD.shape[1] == 1
        per_layer = cache is not None and not in_place
        prefix = None if cache is None else cache.prefix

        def body(carry, xs):
            x_BTD, k_cache, v_cache = carry
            variables, inv_freq, window, i, k_layer, v_layer, prefix_k, prefix_v = xs
            kv = None
            if in_place:
                kv = LayerKV(k_cache, v_cache, start, i, prefix_k, prefix_v)
            elif per_layer:
                kv = LayerKV(k_layer, v_layer, start, None, prefix_k, prefix_v)
            x_BTD, kv = layer.apply(variables, x_BTD, keys, kv, (inv_freq, window))
            if in_place:
                k_cache, v_cache = kv
            return (self._by_row(x_BTD), k_cache, v_cache), (kv if per_layer else None)

        policy = REMAT_POLICIES[self.remat]
        if self.remat != "none":
            body = jax.checkpoint(body, policy=policy)
        no_cache = jnp.zeros((), x_BTD.dtype)
        carry = (x_BTD, cache.k, cache.v) if in_place else (x_BTD, no_cache, no_cache)
        layer_kv = (cache.k, cache.v) if per_layer else (None, None)
        prefix_kv = (None, None) if prefix is None else (prefix.k, prefix.v)
        layers = jnp.arange(self.cfg.num_layers)
        xs = (layer_vars, inv_freq_LH, windows_L, layers, *layer_kv, *prefix_kv)
        (x_BTD, new_k, new_v), layer_out = jax.lax.scan(body, carry, xs)
        if per_layer:
            new_k, new_v = layer_out
        return x_BTD, new_k, new_v

    def logits(self, hidden_BTD):
        kernel_DV = self.head_kernel()
        return self._by_row(head_logits(hidden_BTD, kernel_DV, self.cfg.final_logit_softcap))

    def head_kernel(self):
        """The LM head's [D, V] kernel: the embedding's transpose when they are tied."""
        return self.embed["embedding"].T if self.cfg.tie_embeddings else self.lm_head["kernel"]


def head_logits(hidden_BTD: jax.Array, kernel_DV: jax.Array, softcap: float | None) -> jax.Array:
    """float32 logits [B, T, V] of final hidden states, capped at `softcap` (Gemma's final
    logit softcap) unless None: `Decoder.logits` without the row placement."""
    logits_BTV = jnp.dot(
        hidden_BTD, kernel_DV.astype(hidden_BTD.dtype), preferred_element_type=jnp.float32
    )
    if softcap is not None:
        logits_BTV = jnp.tanh(logits_BTV / softcap) * softcap
    return logits_BTV


def left_padded_positions(mask_BT: jax.Array) -> jax.Array:
    """Positions for a left-padded batch: 0 at each row's first real token."""
    return jnp.maximum(jnp.cumsum(mask_BT.astype(jnp.int32), axis=1) - 1, 0)
