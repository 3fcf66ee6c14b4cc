"""llama.cpp architectures as data: GGUF tensor names -> HF names, GGUF metadata -> HF config.

Supporting another architecture (qwen2, qwen3, gemma3) is one `GGUFArch` entry in `GGUF_ARCHS`:
its two name tables, whether llama.cpp permuted its q/k rows, and a config builder. Known
per-architecture quirks to handle when adding them: qwen2 has q/k/v biases (`attn_q.bias` ->
`self_attn.q_proj.bias`) and no q/k permutation; qwen3 adds `attn_q_norm`/`attn_k_norm`; gemma3
stores every RMSNorm weight as `1 + w` and has post-attention/post-FFN norms.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

Metadata = Mapping[str, Any]
# GGUF tensor name -> shape in numpy/HF order (GGUF's own dims are stored fastest-first).
Shapes = Mapping[str, tuple[int, ...]]

_BLOCK_NAME = re.compile(r"blk\.(\d+)\.(.+)")


@dataclasses.dataclass(frozen=True)
class GGUFArch:
    """How one llama.cpp architecture maps onto a transformers model class."""

    global_names: Mapping[str, str]  # GGUF name -> HF name, outside the layer stack
    block_names: Mapping[str, str]  # `blk.N.<key>` -> `model.layers.N.<value>`
    # llama.cpp's convert script interleaves q/k rows (per head) for its rotary kernel.
    permuted_qk: bool
    build_config: Callable[[Metadata, Shapes, str], dict[str, Any]]

    def hf_name(self, gguf_name: str) -> str | None:
        """The HF state-dict name for a GGUF tensor name, or None if it has none."""
        if gguf_name in self.global_names:
            return self.global_names[gguf_name]
        match = _BLOCK_NAME.fullmatch(gguf_name)
        if match and match.group(2) in self.block_names:
            return f"model.layers.{match.group(1)}.{self.block_names[match.group(2)]}"
        return None


def metadata_value(meta: Metadata, key: str, source: str) -> Any:
    """`meta[key]`, or a ValueError naming the file and the missing key."""
    if key not in meta:
        raise ValueError(f"{source}: GGUF metadata has no {key!r}")
    return meta[key]


def _llama_config(meta: Metadata, shapes: Shapes, source: str) -> dict[str, Any]:
    """A LlamaConfig dict from `llama.*` metadata (defaults are llama.cpp's own)."""

    def key(name: str) -> Any:
        return metadata_value(meta, f"llama.{name}", source)

    scaling = meta.get("llama.rope.scaling.type", "none")
    if scaling != "none":
        raise ValueError(f"{source}: rope scaling {scaling!r} is not supported by the converter")
    hidden = int(key("embedding_length"))
    heads = int(key("attention.head_count"))
    head_dim = int(meta.get("llama.attention.key_length", hidden // heads))
    rotary_dim = int(meta.get("llama.rope.dimension_count", head_dim))
    if rotary_dim != head_dim:
        raise ValueError(f"{source}: partial rotary ({rotary_dim} of {head_dim}) is not supported")
    rope_theta = float(meta.get("llama.rope.freq_base", 10000.0))
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        # The embedding's row count, not len(tokens): some files pad the vocabulary.
        "vocab_size": shapes["token_embd.weight"][0],
        "hidden_size": hidden,
        "intermediate_size": int(key("feed_forward_length")),
        "num_hidden_layers": int(key("block_count")),
        "num_attention_heads": heads,
        "num_key_value_heads": int(meta.get("llama.attention.head_count_kv", heads)),
        "head_dim": head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": int(key("context_length")),
        "rms_norm_eps": float(key("attention.layer_norm_rms_epsilon")),
        # transformers < 5 reads `rope_theta`, >= 5 reads `rope_parameters`.
        "rope_theta": rope_theta,
        "rope_parameters": {"rope_type": "default", "rope_theta": rope_theta},
        "attention_bias": False,
        "mlp_bias": False,
        # llama.cpp writes `output.weight` only when it is not the embedding matrix.
        "tie_word_embeddings": "output.weight" not in shapes,
        "bos_token_id": meta.get("tokenizer.ggml.bos_token_id"),
        "eos_token_id": meta.get("tokenizer.ggml.eos_token_id"),
        "pad_token_id": meta.get("tokenizer.ggml.padding_token_id"),
    }


_DECODER_GLOBALS = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_LLAMA_BLOCK = {
    "attn_norm.weight": "input_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}

# `general.architecture` -> its mapping.
GGUF_ARCHS: dict[str, GGUFArch] = {
    "llama": GGUFArch(
        global_names=_DECODER_GLOBALS,
        block_names=_LLAMA_BLOCK,
        permuted_qk=True,
        build_config=_llama_config,
    ),
}
