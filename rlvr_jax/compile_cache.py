"""JAX's persistent compilation cache (`config.compile_cache`): a restart or a resume
loads the executables it compiled before instead of compiling them again.

XLA:CPU compiles of the 30-layer SmolLM2 step take tens of seconds (BUILD_NOTES, known
limits); with the cache on, a second start of the same run finds every program it needs
under `compile_cache.dir` (default `~/.cache/rlvr_jax/xla`), keyed by the program, its
shapes, the devices and the JAX version, so a stale entry is never used. JAX's cache is
process-wide: the first run of a process that enables it fixes the directory.
Programs that compiled in under `min_compile_seconds` are not written (not worth a file).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax

DEFAULT_DIR = Path("~/.cache/rlvr_jax/xla")


@dataclasses.dataclass(frozen=True)
class CompileCacheConfig:
    """`config.compile_cache`."""

    enabled: bool  # persist compiled programs across processes
    dir: str  # '' = ~/.cache/rlvr_jax/xla
    min_compile_seconds: float  # only programs that took at least this long are stored

    def __post_init__(self):
        if self.min_compile_seconds < 0:
            raise ValueError(
                f"compile_cache.min_compile_seconds must be >= 0, got {self.min_compile_seconds}"
            )


def enable_compile_cache(cfg: CompileCacheConfig) -> Path | None:
    """Points JAX's persistent cache at the configured directory; returns it (None: off)."""
    if not cfg.enabled:
        return None
    path = Path(cfg.dir).expanduser() if cfg.dir else DEFAULT_DIR.expanduser()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", cfg.min_compile_seconds)
    return path
