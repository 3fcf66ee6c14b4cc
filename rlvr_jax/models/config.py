"""Typed decoder configuration, derived from a checkpoint's Hugging Face config.

One frozen dataclass describes every supported family. It is never written by hand for a
real checkpoint: `DecoderConfig.from_hf` reads the transformers config object (parsed from
the checkpoint's `config.json`), so the model is exactly the one users load from the hub.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

SUPPORTED_MODEL_TYPES = ("llama", "qwen2", "qwen3", "gemma3_text", "gemma3")
SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3")


@dataclasses.dataclass(frozen=True)
class RopeConfig:
    """Rotary embedding of one attention kind (HF `rope_parameters`)."""

    theta: float
    rope_type: Literal["default", "linear", "llama3"] = "default"
    factor: float = 1.0
    # llama3 only.
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_position_embeddings: int = 8192

    def __post_init__(self):
        if self.rope_type not in SUPPORTED_ROPE_TYPES:
            raise ValueError(
                f"rope_parameters.rope_type: unsupported {self.rope_type!r}; "
                f"supported: {list(SUPPORTED_ROPE_TYPES)}"
            )
        if self.theta <= 0:
            raise ValueError(f"rope_parameters.rope_theta must be > 0, got {self.theta}")

    @classmethod
    def from_hf(cls, params: dict[str, Any]) -> RopeConfig:
        rope_type = params.get("rope_type", params.get("type", "default"))
        fields: dict[str, Any] = {"theta": float(params["rope_theta"]), "rope_type": rope_type}
        if rope_type in ("linear", "llama3"):
            fields["factor"] = float(params["factor"])
        if rope_type == "llama3":
            fields["low_freq_factor"] = float(params["low_freq_factor"])
            fields["high_freq_factor"] = float(params["high_freq_factor"])
            fields["original_max_position_embeddings"] = int(
                params["original_max_position_embeddings"]
            )
        return cls(**fields)


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
    """Architecture of a decoder-only transformer.

    Shape letters used across `rlvr_jax.models`: B batch, T query time, S key/cache slots,
    D model dim, F MLP dim, N query heads, K kv heads, H head dim, V vocab (package table:
    `rlvr_jax/__init__.py`; layers have no letter).
    """

    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float
    rope: RopeConfig
    # Per layer: None for global attention, else the sliding window length (keys with
    # query_position - key_position < window are visible).
    layer_windows: tuple[int | None, ...]
    # Rope for sliding-window layers when it differs (Gemma 3's local base frequency).
    rope_local: RopeConfig | None = None
    tie_embeddings: bool = True
    qkv_bias: bool = False
    qk_norm: bool = False
    # Gemma: RMSNorm scales by (1 + w), norms after attention and MLP outputs too,
    # embeddings scaled by sqrt(D).
    gemma_norms: bool = False
    embed_scale: bool = False
    mlp_activation: Literal["silu", "gelu_tanh"] = "silu"
    # Scores are multiplied by this; HF uses head_dim**-0.5 or query_pre_attn_scalar**-0.5.
    attn_scale: float | None = None
    attn_logit_softcap: float | None = None
    final_logit_softcap: float | None = None
    max_position_embeddings: int = 8192

    def __post_init__(self):
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_heads}) must be a multiple of "
                f"num_key_value_heads ({self.num_kv_heads})"
            )
        if len(self.layer_windows) != self.num_layers:
            raise ValueError(
                f"layer_types has {len(self.layer_windows)} entries, "
                f"num_hidden_layers is {self.num_layers}"
            )
        if self.mlp_activation not in ("silu", "gelu_tanh"):
            raise ValueError(f"hidden_act: unsupported {self.mlp_activation!r}")

    @property
    def scale(self) -> float:
        return self.attn_scale if self.attn_scale is not None else self.head_dim**-0.5

    def rope_for_layer(self, layer: int) -> RopeConfig:
        if self.layer_windows[layer] is not None and self.rope_local is not None:
            return self.rope_local
        return self.rope

    @property
    def num_params(self) -> int:
        d, f, n, k, h = (
            self.hidden_size,
            self.intermediate_size,
            self.num_heads,
            self.num_kv_heads,
            self.head_dim,
        )
        attn = d * n * h * 2 + d * k * h * 2
        per_layer = attn + 3 * d * f
        head = 0 if self.tie_embeddings else d * self.vocab_size
        return self.vocab_size * d + self.num_layers * per_layer + head

    @classmethod
    def from_hf(cls, hf_config: Any) -> DecoderConfig:
        """Builds the config from a transformers `PretrainedConfig` (e.g. `AutoConfig`)."""
        model_type = hf_config.model_type
        if model_type == "gemma3":  # multimodal wrapper: the text tower is the decoder
            hf_config = hf_config.text_config
            model_type = hf_config.model_type
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise ValueError(
                f"config.json model_type: unsupported {model_type!r}; "
                f"supported: {list(SUPPORTED_MODEL_TYPES)}"
            )
        c = hf_config
        head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        layer_types = getattr(c, "layer_types", None) or ["full_attention"] * c.num_hidden_layers
        windows = tuple(
            c.sliding_window if kind == "sliding_attention" else None for kind in layer_types
        )
        act = getattr(c, "hidden_activation", None) or c.hidden_act
        activations = {"silu": "silu", "gelu_pytorch_tanh": "gelu_tanh"}
        if act not in activations:
            raise ValueError(f"config.json hidden_act: unsupported activation {act!r}")
        rope_params = c.rope_parameters
        common = dict(
            model_type=model_type,
            vocab_size=c.vocab_size,
            hidden_size=c.hidden_size,
            intermediate_size=c.intermediate_size,
            num_layers=c.num_hidden_layers,
            num_heads=c.num_attention_heads,
            num_kv_heads=c.num_key_value_heads,
            head_dim=head_dim,
            rms_norm_eps=c.rms_norm_eps,
            layer_windows=windows,
            tie_embeddings=bool(c.tie_word_embeddings),
            mlp_activation=activations[act],
            max_position_embeddings=c.max_position_embeddings,
        )
        if model_type == "gemma3_text":
            return cls(
                **common,
                rope=RopeConfig.from_hf(rope_params["full_attention"]),
                rope_local=RopeConfig.from_hf(rope_params["sliding_attention"]),
                qkv_bias=bool(c.attention_bias),
                qk_norm=True,
                gemma_norms=True,
                embed_scale=True,
                attn_scale=c.query_pre_attn_scalar**-0.5,
                attn_logit_softcap=c.attn_logit_softcapping,
                final_logit_softcap=c.final_logit_softcapping,
            )
        if model_type == "llama" and getattr(c, "attention_bias", False):
            raise ValueError("config.json attention_bias: llama with attention bias is unsupported")
        return cls(
            **common,
            rope=RopeConfig.from_hf(rope_params),
            qkv_bias=model_type == "qwen2",
            qk_norm=model_type == "qwen3",
        )
