"""Rotary position embeddings (HF's "rotate half" layout)."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from rlvr_jax.models.config import RopeConfig


def inverse_frequencies(rope: RopeConfig, head_dim: int) -> np.ndarray:
    """Inverse frequencies [H/2] in float32, as transformers computes them."""
    exponents = np.arange(0, head_dim, 2, dtype=np.int64).astype(np.float32) / head_dim
    inv_freq = (1.0 / (rope.theta**exponents)).astype(np.float32)
    if rope.rope_type == "linear":
        return inv_freq / np.float32(rope.factor)
    if rope.rope_type == "llama3":
        old_len = rope.original_max_position_embeddings
        low_wavelen = old_len / rope.low_freq_factor
        high_wavelen = old_len / rope.high_freq_factor
        wavelen = 2 * math.pi / inv_freq
        scaled = np.where(wavelen > low_wavelen, inv_freq / rope.factor, inv_freq)
        smooth = (old_len / wavelen - rope.low_freq_factor) / (
            rope.high_freq_factor - rope.low_freq_factor
        )
        smoothed = (1 - smooth) * scaled / rope.factor + smooth * scaled
        is_medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        return np.where(is_medium, smoothed, scaled).astype(np.float32)
    return inv_freq


def apply_rope(x_BTNH: jnp.ndarray, positions_BT: jnp.ndarray, inv_freq: np.ndarray) -> jnp.ndarray:
    """Rotates pairs (i, i + H/2) of each head by angle position * inv_freq[i]."""
    angles_BTh = positions_BT[..., None].astype(jnp.float32) * jnp.asarray(inv_freq)
    angles_BTH = jnp.concatenate([angles_BTh, angles_BTh], axis=-1)
    # HF casts cos/sin to the activation dtype before the product.
    cos = jnp.cos(angles_BTH)[:, :, None, :].astype(x_BTNH.dtype)
    sin = jnp.sin(angles_BTH)[:, :, None, :].astype(x_BTNH.dtype)
    half = x_BTNH.shape[-1] // 2
    rotated = jnp.concatenate([-x_BTNH[..., half:], x_BTNH[..., :half]], axis=-1)
    return x_BTNH * cos + rotated * sin
