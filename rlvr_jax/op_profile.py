"""Where a compiled XLA:CPU program spends its time, op by op, with each matmul's FLOP/s.

A profiler trace (`jax.profiler.trace(dir, create_perfetto_trace=True)`) times every
thunk XLA:CPU runs, named as the instructions of the optimized HLO module (`fusion.12`,
`ynn_fusion.3`, `dot.7`); the module's text (`--xla_dump_to`, `*after_optimizations.txt`)
gives what each one computes. Joined, they give a table:

    ops = op_table(trace_events(trace_dir), parse_hlo(hlo_text))
    summary(ops, wall_seconds)   # matmul vs other time, matmul GFLOP/s, trace coverage

An op's FLOPs count the dots inside it (2 per multiply-add, from its operand shapes), so
a fused matmul and a bare `dot` are counted alike; every other op counts 0. Caveats,
both visible in `summary`: XLA:CPU runs independent thunks concurrently, so op times
can add up to more than the wall time (and an op sharing the cores looks slower than it
is alone); and the trace buffer is bounded, so a long program (a 256-step decode loop)
may have events dropped: `coverage` is traced op time over wall time.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import pathlib
import re
from collections.abc import Iterable

_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(\w+)\[([\d,]*)\]")
_DOT = re.compile(r"\bdot\(%?([\w.\-]+),\s*%?([\w.\-]+)\)")
_CALLS = re.compile(r"calls=%?([\w.\-]+)")
_LHS_CONTRACTING = re.compile(r"lhs_contracting_dims=\{([\d,]*)\}")


@dataclasses.dataclass(frozen=True)
class HloOp:
    """One instruction of an optimized HLO module: its shape and the dots it runs."""

    name: str
    shape: tuple[int, ...]
    flops: int  # of the dots in it (a fusion's: those of its fused computation)
    dots: tuple[str, ...]  # "out=[...] k=K" of each dot, for the table


def parse_hlo(text: str) -> dict[str, HloOp]:
    """Every instruction of an HLO module's text, by name."""
    computations: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith("{"):
            current = line.split()[0].lstrip("%")
            if current in ("HloModule", "ENTRY"):
                current = line.split()[1].lstrip("%")
            computations[current] = []
        elif current is not None and line.strip() and line.strip() != "}":
            computations[current].append(line)

    shapes: dict[str, tuple[int, ...]] = {}
    for lines in computations.values():
        for line in lines:
            m = _INSTRUCTION.match(line)
            if m:
                shapes[m.group(1)] = _dims(m.group(3))

    def dots_of(lines: Iterable[str]) -> list[tuple[int, str]]:
        found = []
        for line in lines:
            dot, m = _DOT.search(line), _INSTRUCTION.match(line)
            if not (dot and m):
                continue
            out = _dims(m.group(3))
            lhs = shapes.get(dot.group(1), ())
            contracting = _LHS_CONTRACTING.search(line)
            k = 1
            for axis in _dims(contracting.group(1)) if contracting else ():
                k *= lhs[axis] if axis < len(lhs) else 1
            found.append((2 * math.prod(out) * k, f"out={list(out)} k={k}"))
        return found

    ops = {}
    for lines in computations.values():
        for line in lines:
            m = _INSTRUCTION.match(line)
            if not m:
                continue
            calls = _CALLS.search(line)
            inner = computations.get(calls.group(1), []) if calls else []
            dots = dots_of(inner) if calls else dots_of([line])
            ops[m.group(1)] = HloOp(
                m.group(1),
                _dims(m.group(3)),
                sum(f for f, _ in dots),
                tuple(d for _, d in dots),
            )
    return ops


def _dims(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x)


def trace_events(trace_dir: str | pathlib.Path) -> list[dict]:
    """The complete ('X') events of the perfetto trace under `trace_dir`."""
    files = sorted(pathlib.Path(trace_dir).rglob("*perfetto_trace.json.gz"))
    if not files:
        raise FileNotFoundError(f"no perfetto_trace.json.gz under {trace_dir}")
    with gzip.open(files[-1]) as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    return [e for e in events if e.get("ph") == "X"]


@dataclasses.dataclass(frozen=True)
class OpTime:
    name: str
    seconds: float  # summed over its calls
    calls: int
    flops_per_call: int
    dots: tuple[str, ...]

    @property
    def gflops_per_second(self) -> float:
        return self.flops_per_call * self.calls / self.seconds / 1e9 if self.seconds else 0.0


def op_table(events: Iterable[dict], hlo_ops: dict[str, HloOp]) -> list[OpTime]:
    """Time per HLO instruction (events named after one), slowest first; runtime events
    (executor, thread pool, Python frames) are not instructions and are left out."""
    seconds: dict[str, float] = {}
    calls: dict[str, int] = {}
    for e in events:
        name = e.get("name", "")
        if name in hlo_ops:
            seconds[name] = seconds.get(name, 0.0) + e.get("dur", 0) / 1e6
            calls[name] = calls.get(name, 0) + 1
    table = [OpTime(n, s, calls[n], hlo_ops[n].flops, hlo_ops[n].dots) for n, s in seconds.items()]
    return sorted(table, key=lambda op: -op.seconds)


def summary(ops: list[OpTime], wall_seconds: float) -> dict[str, float]:
    """Matmul and other op time, the matmuls' FLOP/s, and the trace's coverage of the wall
    time (traced op seconds / wall seconds: below 1 where events were dropped or the host
    waited, above 1 where ops overlapped)."""
    matmul = [op for op in ops if op.flops_per_call]
    matmul_s = sum(op.seconds for op in matmul)
    flops = sum(op.flops_per_call * op.calls for op in matmul)
    traced = sum(op.seconds for op in ops)
    return {
        "wall_s": wall_seconds,
        "traced_op_s": traced,
        "coverage": traced / wall_seconds if wall_seconds else 0.0,
        "matmul_s": matmul_s,
        "other_s": traced - matmul_s,
        "matmul_tflop": flops / 1e12,
        "matmul_gflops_per_s": flops / matmul_s / 1e9 if matmul_s else 0.0,
    }
