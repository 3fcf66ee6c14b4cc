"""CompilationCounter: one count per backend compilation, nothing for cache hits."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rlvr_jax.observers.compilations import COMPILE_COUNT, COMPILE_SECONDS, CompilationCounter


def test_counts_new_shapes_not_cache_hits():
    f = jax.jit(lambda x: jnp.sin(x) * 2.0)
    x3, x5 = np.ones(3, np.float32), np.ones(5, np.float32)  # host arrays: no compile of their own
    with CompilationCounter() as compiles:
        start = compiles.snapshot()
        f(x3).block_until_ready()
        f(x5).block_until_ready()
        warm = compiles.snapshot()
        f(x3 * 2).block_until_ready()  # same shape and dtype: cached
        f(x5 * 2).block_until_ready()
        assert compiles.since(warm).count == 0
        first = compiles.since(start)
        assert first.count == 2
        assert first.functions == ("jit(<lambda>)", "jit(<lambda>)")
        metrics = compiles.metrics_since(start)
        assert metrics[COMPILE_COUNT] == 2.0 and metrics[COMPILE_SECONDS] > 0


def test_stops_counting_after_exit():
    counter = CompilationCounter()
    with counter:
        pass
    jax.jit(lambda x: x + 41.0)(np.ones(7, np.float32)).block_until_ready()
    assert counter.snapshot().count == 0
