"""Run-level metric helpers: phase timing, throughput, peak memory. Names are slash-namespaced.

    times: dict[str, float] = {}
    with timed("sample", times):
        completions = jax.block_until_ready(generate(...))   # block, or you time the dispatch
    with timed("reward", times):
        rewards = score_completions(...)
    metrics = {**times, TOKENS_PER_S: tokens_per_second(num_tokens, sum(times.values())),
               **memory_metrics()}

Keys: `time/<phase>_s` (seconds, summed over repeated blocks), `throughput/tokens_per_s`,
`memory/host_peak_mb` (peak resident set of this process), `memory/device_peak_mb` (largest
`peak_bytes_in_use` over local devices; absent where the backend does not report it, e.g. CPU).
"""

from __future__ import annotations

import contextlib
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path

TOKENS_PER_S = "throughput/tokens_per_s"
HOST_PEAK_MB = "memory/host_peak_mb"
DEVICE_PEAK_MB = "memory/device_peak_mb"
_MB = 1024 * 1024


def phase_key(phase: str) -> str:
    """The metric name of a phase's wall-clock seconds: 'sample' -> 'time/sample_s'."""
    if not phase or "/" in phase:
        raise ValueError(f"phase name must be non-empty and contain no '/', got {phase!r}")
    return f"time/{phase}_s"


@contextlib.contextmanager
def timed(phase: str, times: dict[str, float]) -> Iterator[None]:
    """Add the wall-clock seconds of the `with` block to `times['time/<phase>_s']`.

    JAX dispatches asynchronously: block on the block's results inside it
    (`jax.block_until_ready`), or the time measured is the dispatch, not the work.
    """
    key = phase_key(phase)
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        times[key] = times[key] + elapsed if key in times else elapsed


def tokens_per_second(num_tokens: int, seconds: float) -> float:
    """Throughput; `seconds` must be positive."""
    if seconds <= 0:
        raise ValueError(f"tokens_per_second: seconds must be > 0, got {seconds}")
    return num_tokens / seconds


def host_peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB.

    Linux: VmHWM of /proc/self/status, which counts this address space only (ru_maxrss
    also inherits the peak of a parent that spawned us with vfork). Elsewhere: ru_maxrss.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / _MB if sys.platform == "darwin" else peak / 1024


def device_peak_memory_mb() -> float | None:
    """Largest `peak_bytes_in_use` over this process's devices in MiB; None if unreported."""
    import jax  # deferred: the observers package must not pay for jax at import

    peaks = []
    for device in jax.local_devices():
        stats = device.memory_stats()
        if stats and "peak_bytes_in_use" in stats:
            peaks.append(stats["peak_bytes_in_use"] / _MB)
    return max(peaks) if peaks else None


def memory_metrics() -> dict[str, float]:
    """`memory/host_peak_mb`, and `memory/device_peak_mb` where the backend reports it."""
    metrics = {HOST_PEAK_MB: host_peak_rss_mb()}
    device = device_peak_memory_mb()
    if device is not None:
        metrics[DEVICE_PEAK_MB] = device
    return metrics
