"""Decoder models, checkpoint loading and tokenizers."""

from rlvr_jax.models.config import DecoderConfig, RopeConfig
from rlvr_jax.models.decoder import Decoder, left_padded_positions
from rlvr_jax.models.kv_cache import KVCache
from rlvr_jax.models.loading import (
    load_decoder_config,
    load_model,
    load_tokenizer,
    resolve_checkpoint,
    save_hf_checkpoint,
)
from rlvr_jax.models.tokenizer import render_chat

__all__ = [
    "Decoder",
    "DecoderConfig",
    "KVCache",
    "RopeConfig",
    "left_padded_positions",
    "load_decoder_config",
    "load_model",
    "load_tokenizer",
    "render_chat",
    "resolve_checkpoint",
    "save_hf_checkpoint",
]
