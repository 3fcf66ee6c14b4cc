"""The persistent compilation cache: a second start of a run compiles nothing it compiled
before (scripts/train.py twice, in fresh processes, on the tiny config)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rlvr_jax.compile_cache import CompileCacheConfig
from rlvr_jax.observers.compilations import (
    CACHE_HITS,
    CACHE_LOAD_SECONDS,
    COMPILE_COUNT,
    COMPILE_SECONDS,
)

REPO = Path(__file__).resolve().parents[1]


def train(workdir: Path, cache: Path) -> dict:
    subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "train.py"),
            f"--config={REPO / 'configs' / 'tiny.py'}",
            f"--workdir={workdir}",
            "--config.max_steps=1",
            "--config.eval.every_steps=0",
            "--config.observers.tensorboard=False",
            f"--config.compile_cache.dir={cache}",
            "--config.compile_cache.min_compile_seconds=0.0",
        ],
        check=True,
        cwd=REPO,
        timeout=600,
        capture_output=True,
    )
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return next(r for r in rows if r.get("step") == 1 and "loss" in r)


def test_second_start_loads_every_program_from_the_cache(tmp_path):
    cache = tmp_path / "xla"
    first = train(tmp_path / "a", cache)
    assert first[COMPILE_COUNT] >= 2 and first[CACHE_HITS] == 0
    assert first[CACHE_LOAD_SECONDS] == 0.0
    assert any(cache.iterdir())
    second = train(tmp_path / "b", cache)
    # Every program of the first step (sampler, scorer, train step, ...) came from the cache.
    assert second[CACHE_HITS] == second[COMPILE_COUNT] == first[COMPILE_COUNT]
    # Loading is timed apart, inside the compile seconds it is part of.
    assert 0.0 < second[CACHE_LOAD_SECONDS] <= second[COMPILE_SECONDS]
    assert second["loss"] == first["loss"]  # the same executables, the same numbers


def test_negative_threshold_names_the_key():
    with pytest.raises(ValueError, match="compile_cache.min_compile_seconds"):
        CompileCacheConfig(enabled=True, dir="", min_compile_seconds=-1.0)
