"""Counting XLA compilations, so a recompiling step shows up in the metrics.

    with CompilationCounter() as compiles:
        before = compiles.snapshot()
        state, metrics = rl_step(...)
        metrics |= compiles.metrics_since(before)   # compile/count, compile/seconds

JAX reports every backend compilation (a jitted function meeting a new shape, dtype or
static argument) as a `/jax/core/compile/backend_compile_duration` event; the counter
listens to it while active. After the first step of a run, `compile/count` should be 0:
anything else is a shape leaking into a jitted function (see the sampler's buckets).
Programs loaded from the persistent compilation cache (compile_cache.py) report the same
event, with the load time (cache key, read, deserialization) as its duration: they are in
`compile/count` and also in `compile/cache_hits`, so `count - cache_hits` programs were
really compiled, and `compile/cache_load_seconds` is the part of `compile/seconds` spent
reading and deserializing them.
"""

from __future__ import annotations

import dataclasses

import jax

BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"  # persistent cache (compile_cache.py)
CACHE_LOAD_EVENT = "/jax/compilation_cache/cache_retrieval_time_sec"
COMPILE_COUNT = "compile/count"
COMPILE_SECONDS = "compile/seconds"
CACHE_HITS = "compile/cache_hits"
CACHE_LOAD_SECONDS = "compile/cache_load_seconds"


@dataclasses.dataclass(frozen=True)
class CompileTally:
    count: int
    seconds: float
    functions: tuple[str, ...]  # names of the compiled functions, in order
    cache_hits: int  # programs loaded from the persistent compilation cache
    cache_load_seconds: float  # reading and deserializing them


class CompilationCounter:
    """A context manager that tallies backend compilations while it is active."""

    def __init__(self):
        self._count = 0
        self._seconds = 0.0
        self._functions: list[str] = []
        self._cache_hits = 0
        self._cache_load_seconds = 0.0

    def _on_plain_event(self, event: str, **kwargs) -> None:
        if event == CACHE_HIT_EVENT:
            self._cache_hits += 1

    def _on_event(self, event: str, duration: float, **kwargs) -> None:
        if event == BACKEND_COMPILE_EVENT:
            self._count += 1
            self._seconds += duration
            self._functions.append(str(kwargs.get("fun_name", "?")))
        elif event == CACHE_LOAD_EVENT:
            self._cache_load_seconds += duration

    def __enter__(self) -> CompilationCounter:
        jax.monitoring.register_event_duration_secs_listener(self._on_event)
        jax.monitoring.register_event_listener(self._on_plain_event)
        return self

    def __exit__(self, *exc) -> None:
        jax.monitoring.unregister_event_duration_listener(self._on_event)
        jax.monitoring.unregister_event_listener(self._on_plain_event)

    def snapshot(self) -> CompileTally:
        return CompileTally(
            self._count,
            self._seconds,
            tuple(self._functions),
            self._cache_hits,
            self._cache_load_seconds,
        )

    def since(self, before: CompileTally) -> CompileTally:
        return CompileTally(
            self._count - before.count,
            self._seconds - before.seconds,
            tuple(self._functions[len(before.functions) :]),
            self._cache_hits - before.cache_hits,
            self._cache_load_seconds - before.cache_load_seconds,
        )

    def metrics_since(self, before: CompileTally) -> dict[str, float]:
        """`compile/count`, `compile/seconds`, `compile/cache_hits` and
        `compile/cache_load_seconds` after `before`."""
        tally = self.since(before)
        return {
            COMPILE_COUNT: float(tally.count),
            COMPILE_SECONDS: tally.seconds,
            CACHE_HITS: float(tally.cache_hits),
            CACHE_LOAD_SECONDS: tally.cache_load_seconds,
        }
