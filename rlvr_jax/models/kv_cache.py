"""Preallocated key/value cache.

The cache has S slots per row. A forward over T new tokens writes them into slots
[end, end + T) of every row (rows stay aligned; left padding is marked invalid), so one
scalar `end` suffices while each row keeps its own positions.

Keys and values are a tuple of per-layer [B, K, S, H] arrays for the unrolled decoder,
or one stacked [L, B, K, S, H] array each for the scanned one (`scan_layers`), which
updates it in place inside its loop. `map_rows` applies a row-wise function to either.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.struct
import jax
import jax.numpy as jnp

from rlvr_jax.models.config import DecoderConfig


@flax.struct.dataclass
class KVCache:
    # Per layer [B, K, S, H] (a tuple) or stacked [L, B, K, S, H]: batch and kv-head
    # lead, so the attention dots batch over them without transposing the cache.
    k: tuple[jax.Array, ...] | jax.Array
    v: tuple[jax.Array, ...] | jax.Array
    positions_BS: jax.Array  # int32 position of the token held in each slot
    valid_BS: jax.Array  # bool, the slot holds a real (non-padding) token
    end: jax.Array  # int32 scalar, number of slots written so far

    @property
    def num_slots(self) -> int:
        return self.valid_BS.shape[1]

    @property
    def stacked(self) -> bool:
        return not isinstance(self.k, tuple)

    def map_rows(self, fn: Callable[[jax.Array, int], jax.Array]) -> KVCache:
        """The cache with `fn(array, row_axis)` applied to every row-indexed array."""
        if self.stacked:
            k, v = fn(self.k, 1), fn(self.v, 1)
        else:
            k, v = tuple(fn(x, 0) for x in self.k), tuple(fn(x, 0) for x in self.v)
        return KVCache(k, v, fn(self.positions_BS, 0), fn(self.valid_BS, 0), self.end)

    @classmethod
    def empty(
        cls, cfg: DecoderConfig, batch: int, num_slots: int, dtype, stacked: bool = False
    ) -> KVCache:
        shape = (batch, cfg.num_kv_heads, num_slots, cfg.head_dim)
        if stacked:
            k = jnp.zeros((cfg.num_layers, *shape), dtype)
            v = jnp.zeros((cfg.num_layers, *shape), dtype)
        else:
            k = tuple(jnp.zeros(shape, dtype) for _ in range(cfg.num_layers))
            v = tuple(jnp.zeros(shape, dtype) for _ in range(cfg.num_layers))
        return cls(
            k=k,
            v=v,
            positions_BS=jnp.zeros((batch, num_slots), jnp.int32),
            valid_BS=jnp.zeros((batch, num_slots), bool),
            end=jnp.zeros((), jnp.int32),
        )
