"""Preallocated key/value cache.

The cache has S slots per row. A forward over T new tokens writes them into slots
[end, end + T) of every row (rows stay aligned; left padding is marked invalid), so one
scalar `end` suffices while each row keeps its own positions.

Keys and values are a tuple of per-layer [B, K, S, H] arrays for the unrolled decoder,
or one stacked [L, B, K, S, H] array each for the scanned one (`scan_layers`), which
updates it in place inside its loop. `map_rows` applies a row-wise function to either.

A cache may also hold a `SharedPrefix`: the keys of prompts that runs of G consecutive
rows continue (the sampler's G samples, the train step's completions), stored once per
prompt and read by all G rows (models/attention.py); the rows' own slots then hold only
their continuations. `read_chunk` > 0 makes a decode step read the own slots in chunks
of that many up to the filled length (`end`) instead of all S.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.struct
import jax
import jax.numpy as jnp

from rlvr_jax.models.config import DecoderConfig


@flax.struct.dataclass
class SharedPrefix:
    """Read-only keys of B prompts for R = B * G rows (row r continues prompt r // G)."""

    k: tuple[jax.Array, ...] | jax.Array  # per layer [B, K, P, H] or stacked [L, B, K, P, H]
    v: tuple[jax.Array, ...] | jax.Array
    positions_BP: jax.Array
    valid_BP: jax.Array


def _map_kv(kv, fn):
    if isinstance(kv, tuple):
        return tuple(fn(x, 0) for x in kv)
    return fn(kv, 1)


@flax.struct.dataclass
class KVCache:
    # Per layer [B, K, S, H] (a tuple) or stacked [L, B, K, S, H]: batch and kv-head
    # lead, so the attention dots batch over them without transposing the cache.
    k: tuple[jax.Array, ...] | jax.Array
    v: tuple[jax.Array, ...] | jax.Array
    positions_BS: jax.Array  # int32 position of the token held in each slot
    valid_BS: jax.Array  # bool, the slot holds a real (non-padding) token
    end: jax.Array  # int32 scalar, number of slots written so far
    prefix: SharedPrefix | None = None
    # Decode steps read the own slots `read_chunk` at a time up to `end` (0: all at once).
    read_chunk: int = flax.struct.field(pytree_node=False, default=0)

    @property
    def num_slots(self) -> int:
        return self.valid_BS.shape[1]

    @property
    def stacked(self) -> bool:
        return not isinstance(self.k, tuple)

    def map_rows(self, fn: Callable[[jax.Array, int], jax.Array]) -> KVCache:
        """The cache with `fn(array, row_axis)` applied to every row-indexed array (the
        prefix's rows too: prompt b's rows are b * G .. b * G + G - 1, so a contiguous
        split of the rows is one of the prompts)."""
        k, v = _map_kv(self.k, fn), _map_kv(self.v, fn)
        prefix = self.prefix
        if prefix is not None:
            prefix = SharedPrefix(
                _map_kv(prefix.k, fn),
                _map_kv(prefix.v, fn),
                fn(prefix.positions_BP, 0),
                fn(prefix.valid_BP, 0),
            )
        return self.replace(
            k=k,
            v=v,
            positions_BS=fn(self.positions_BS, 0),
            valid_BS=fn(self.valid_BS, 0),
            prefix=prefix,
        )

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
