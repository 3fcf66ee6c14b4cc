"""scripts/eval.py on the tiny config: base vs a trained run, resume, paired comparison."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rlvr_jax.config_builder import sibling_config
from rlvr_jax.evaluation.evaluate_run import QUESTIONS, compare_dirs, evaluate_run
from rlvr_jax.train import train_and_evaluate

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny.py"


def tiny(num_samples: int = 2):
    config = sibling_config(str(TINY), "tiny")
    config.eval.num_samples = num_samples
    config.eval.ks = (1, 2)
    config.eval.num_resamples = 200
    return config


def test_base_trained_and_comparison(tmp_path):
    base_dir, run_dir = tmp_path / "eval_base", tmp_path / "eval_run"
    summary = evaluate_run(tiny(), None, base_dir)
    assert summary["num_questions"] == 4 and summary["num_samples"] == 2
    for name in (
        "greedy/accuracy_strict",
        "greedy/accuracy_lenient",
        "sampled/pass@2_strict",
        "sampled/maj@2_lenient",
        "greedy/format_rate",
        "greedy/truncation_rate",
    ):
        metric = summary["metrics"][name]
        assert metric["ci_low"] <= metric["mean"] <= metric["ci_high"], name
    report = json.loads((base_dir / "report.json").read_text())
    assert report["meta"]["policy"].startswith("base:")
    assert (base_dir / "report.md").read_text().count("|") > 10

    # A rerun finds every question done and reproduces the same report.
    lines_before = (base_dir / QUESTIONS).read_text()
    again = evaluate_run(tiny(), None, base_dir)
    assert (base_dir / QUESTIONS).read_text() == lines_before
    assert again["metrics"] == summary["metrics"]

    workdir = tmp_path / "train"
    train_and_evaluate(tiny(), workdir)
    trained = evaluate_run(tiny(), workdir, run_dir)
    assert json.loads((run_dir / "report.json").read_text())["meta"]["policy"].endswith("@step3")
    comparison = compare_dirs(tiny(), run_dir, base_dir, tmp_path / "cmp")
    assert comparison["num_questions"] == trained["num_questions"] == 4
    greedy = comparison["metrics"]["greedy/accuracy_lenient"]
    assert 0.0 <= greedy["p_value"] <= 1.0
    assert (tmp_path / "cmp" / "comparison.md").is_file()


def test_cli_runs(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "eval.py"),
            f"--config={TINY}",
            f"--out={tmp_path / 'e'}",
            "--config.eval.num_samples=0",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "e" / "report.json").is_file()
