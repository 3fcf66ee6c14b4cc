"""What processes of a multi-controller run exchange on the host side, and nothing more.

Every process runs the same program on its own slice of each batch (its own prompts, its
own evaluation questions); jitted code sees global arrays. The host side needs a few
collectives, each a no-op in a single-process run:

    global_max(n)          the largest n over processes (prompt padding must agree)
    any_process(flag)      True if any process says so (a stop request, a failure)
    gather_rows(x)         every process's rows of a host array, in process order
    gather_objects(items)  every process's JSON-able items, in process order
    local_rows(array)      this process's rows of a global, row-sharded jax.Array
    fetch_global(tree)     whole host copies of global arrays (params for export)

Rows are owned in process order: process p holds a contiguous block of every global
batch (`RowIterator` slices batches that way, and `jax.make_mesh` places each host's
devices next to each other), so gathering in process order restores the global order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils


def is_multiprocess() -> bool:
    return jax.process_count() > 1


def global_max(value: int) -> int:
    if not is_multiprocess():
        return int(value)
    values = multihost_utils.process_allgather(np.asarray(value, np.int64))
    return int(np.max(values))


def any_process(flag: bool) -> bool:
    if not is_multiprocess():
        return bool(flag)
    flags = multihost_utils.process_allgather(np.asarray(flag, np.int32))
    return bool(np.any(flags))


def gather_rows(x: Any) -> np.ndarray:
    """Concatenation over processes (in process order) of each process's [n_p, ...] rows."""
    x = np.asarray(x)
    if not is_multiprocess():
        return x
    counts = multihost_utils.process_allgather(np.asarray(x.shape[0], np.int64))
    if len(set(counts.tolist())) != 1:
        raise ValueError(f"gather_rows: processes hold different row counts {counts.tolist()}")
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def gather_objects(items: Sequence[Any]) -> list[Any]:
    """All processes' JSON-serializable items, process 0's first (evaluation records)."""
    if not is_multiprocess():
        return list(items)
    payload = np.frombuffer(json.dumps(list(items)).encode(), np.uint8)
    size = global_max(payload.size)
    padded = np.zeros(size, np.uint8)
    padded[: payload.size] = payload
    sizes = multihost_utils.process_allgather(np.asarray(payload.size, np.int64))
    blobs = multihost_utils.process_allgather(padded)
    out: list[Any] = []
    for blob, n in zip(blobs, sizes.tolist(), strict=True):
        out.extend(json.loads(bytes(blob[:n]).decode()))
    return out


def local_rows(x: jax.Array) -> np.ndarray:
    """This process's rows of a global array sharded on its leading axis, in row order.

    A fully addressable array (one process) comes back whole.
    """
    if x.is_fully_addressable:
        return np.asarray(x)
    shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
    blocks, seen = [], set()
    for shard in shards:
        start = shard.index[0].start or 0
        if start in seen:  # replicated over another axis: one copy per row block
            continue
        seen.add(start)
        blocks.append(np.asarray(shard.data))
    return np.concatenate(blocks, axis=0)


def fetch_global(tree: Any) -> Any:
    """Host (numpy) copies of every leaf, whole; a collective when arrays span processes."""
    if not is_multiprocess():
        return jax.device_get(tree)
    return multihost_utils.process_allgather(tree, tiled=True)
