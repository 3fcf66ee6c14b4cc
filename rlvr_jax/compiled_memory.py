"""Per-device bytes of a compiled XLA program (its buffer assignment), without running it.

    compiled = jax.jit(f).lower(*shape_dtype_structs).compile()
    memory_stats(compiled)  # {'argument', 'output', 'temp', 'alias', 'total'} or None

`total` = arguments + outputs - donated aliases + temporaries: what the program holds at
its peak on one device. scripts/bench_fsdp.py and scripts/memory_analysis.py report it.
"""

from __future__ import annotations

from typing import Any


def memory_stats(compiled: Any) -> dict[str, int] | None:
    """Per-device bytes from XLA's buffer assignment, or None where the backend gives none."""
    stats = compiled.memory_analysis()
    if stats is None:
        return None
    out = {
        key: int(getattr(stats, f"{key}_size_in_bytes"))
        for key in ("argument", "output", "temp", "alias")
    }
    out["total"] = out["argument"] + out["output"] - out["alias"] + out["temp"]
    return out
