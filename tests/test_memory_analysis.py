"""scripts/memory_analysis.py on the tiny config: XLA's figures for the real train step,
and micro-batches lower its temporaries while the arguments stay the same."""

import json
import pathlib

from repo_scripts import REPO, run_script


def analyse(tmp_path: pathlib.Path, microbatches: int) -> dict:
    out = tmp_path / f"m{microbatches}.json"
    stdout = run_script(
        "memory_analysis.py",
        f"--config={REPO / 'configs' / 'tiny.py'}",
        "--prompt_len=16",
        "--config.sampling.max_new_tokens=32",
        f"--config.rl.num_microbatches={microbatches}",
        f"--out={out}",
        timeout=300,
    )
    assert "temp" in stdout
    return json.loads(out.read_text())


def test_microbatches_lower_the_temporaries(tmp_path):
    one, two = analyse(tmp_path, 1), analyse(tmp_path, 2)
    assert (one["rows"], one["prompt_len"], one["completion_len"]) == (8, 16, 32)
    assert one["num_microbatches"] == 1 and two["num_microbatches"] == 2
    a, b = one["bytes"], two["bytes"]
    assert a["total"] == a["argument"] + a["output"] - a["alias"] + a["temp"]
    assert a["argument"] == b["argument"]  # the same base, state and batch
    # The [rows, 16, V] LM-head chunks dominate at this size: half the rows, less held.
    assert b["temp"] < a["temp"]
