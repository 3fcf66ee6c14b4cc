"""Preallocated key/value cache.

The cache has S slots per row. A forward over T new tokens writes them into slots
[end, end + T) of every row (rows stay aligned; left padding is marked invalid), so one
scalar `end` suffices while each row keeps its own positions.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from rlvr_jax.models.config import DecoderConfig


@flax.struct.dataclass
class KVCache:
    # Per layer [B, K, S, H]: batch and kv-head lead, so the attention dots batch over them
    # without transposing the cache every decode step.
    k: tuple[jax.Array, ...]
    v: tuple[jax.Array, ...]
    positions_BS: jax.Array  # int32 position of the token held in each slot
    valid_BS: jax.Array  # bool, the slot holds a real (non-padding) token
    end: jax.Array  # int32 scalar, number of slots written so far

    @property
    def num_slots(self) -> int:
        return self.valid_BS.shape[1]

    @classmethod
    def empty(cls, cfg: DecoderConfig, batch: int, num_slots: int, dtype) -> KVCache:
        shape = (batch, cfg.num_kv_heads, num_slots, cfg.head_dim)
        return cls(
            k=tuple(jnp.zeros(shape, dtype) for _ in range(cfg.num_layers)),
            v=tuple(jnp.zeros(shape, dtype) for _ in range(cfg.num_layers)),
            positions_BS=jnp.zeros((batch, num_slots), jnp.int32),
            valid_BS=jnp.zeros((batch, num_slots), bool),
            end=jnp.zeros((), jnp.int32),
        )
