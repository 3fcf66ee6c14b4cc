"""scripts/compare_algorithms.py end to end on the tiny model: trains, evaluates, pairs,
writes the table, the JSON and the plot; a second call retrains nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_OVERRIDES = """
from rlvr_jax.config_builder import sibling_config


def get_config():
    c = sibling_config({tiny!r}, "tiny")
    c.observers.tensorboard = False
{extra}
    return c
"""


def write_config(tmp_path: Path, name: str, extra: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(TINY_OVERRIDES.format(tiny=str(REPO / "configs" / "tiny.py"), extra=extra))
    return path


@pytest.mark.slow
def test_compare_algorithms_writes_one_table_and_plot(tmp_path):
    grpo = write_config(tmp_path, "grpo_tiny", "")
    dpo = write_config(tmp_path, "dpo_tiny", '    c.rl.algorithm = "dpo"\n    c.rl.beta = 0.1')
    out = tmp_path / "out"
    command = [
        sys.executable,
        str(REPO / "scripts" / "compare_algorithms.py"),
        f"--out={out}",
        f"--algorithms=grpo:{grpo},dpo:{dpo}",
        "--max_steps=2",
        "--eval_questions=4",
        "--override=sampling.max_new_tokens=6",
    ]
    subprocess.run(command, check=True, cwd=REPO, timeout=600)
    report = json.loads((out / "comparison.json").read_text())
    assert [r["algorithm"] for r in report["rows"]] == ["grpo", "dpo"]
    assert report["settings"] == {
        "max_steps": 2,
        "seed": 0,
        "sampling.max_new_tokens": 6,
        "eval_questions": 4,
    }
    dpo_row = report["rows"][1]
    assert {"mean", "ci_low", "ci_high", "difference", "p_value", "median_step_s"} <= set(dpo_row)
    assert "difference" not in report["rows"][0]  # the reference row
    table = (out / "comparison.md").read_text()
    assert "| dpo |" in table and "McNemar p" in table
    assert (out / "comparison.png").stat().st_size > 0
    for name in ("base", "grpo", "dpo", "dpo_vs_grpo"):
        assert (out / "eval" / name).is_dir(), name

    rerun = subprocess.run(
        command, check=True, cwd=REPO, timeout=600, capture_output=True, text=True
    )
    assert rerun.stdout.count("already trained to step 2") == 2
