"""scripts/plot_metrics.py: panel selection and a real PNG from a synthetic metrics.jsonl."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "plot_metrics.py"
_spec = importlib.util.spec_from_file_location("plot_metrics", _SCRIPT)
plot_metrics = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(plot_metrics)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write_metrics(path: Path, num_steps: int) -> None:
    rows = []
    for step in range(1, num_steps + 1):
        rows.append(
            {
                "step": step,
                "reward/total/mean": step / num_steps,
                "reward/answer_match/mean": 0.9 * step / num_steps,
                "reward/correct_frac": 0.8 * step / num_steps,
                "completion/length_mean": 40.0 + step,
                "kl/mean": 0.001 * step,
                "policy/clip_frac_low": 0.01,
                "policy/clip_frac_high": 0.02,
                "loss": math.nan if step == 3 else 1.0 / step,
            }
        )
        if step % 5 == 0:
            rows.append(
                {
                    "step": step,
                    "eval/accuracy": 0.5,
                    "eval/accuracy/ci_low": 0.4,
                    "eval/accuracy/ci_high": 0.6,
                }
            )
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_series_and_panel_keys():
    rows = [{"step": 2, "a": 1.0, "flag": True}, {"step": 1, "a": 0.5}, {"step": 2, "a": 3.0}]
    assert plot_metrics.load_series(rows) == {"a": ([1, 2], [0.5, 3.0])}
    keys = ["reward/total/mean", "reward/fmt/mean", "eval/accuracy", "eval/accuracy/ci_low"]
    assert plot_metrics.panel_keys(("reward/total/mean", "reward/*/mean"), keys) == [
        "reward/total/mean",
        "reward/fmt/mean",
    ]
    assert plot_metrics.panel_keys(("eval/accuracy*",), keys) == ["eval/accuracy"]
    assert plot_metrics.ema([1.0, 1.0, math.nan], 0.9) == pytest.approx([1.0, 1.0, 1.0])


def test_png_from_synthetic_metrics(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    _write_metrics(metrics, num_steps=12)
    out = plot_metrics.plot_metrics(str(metrics), str(tmp_path / "plots"), smooth=0.6)
    assert out == tmp_path / "plots" / "metrics.png"
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000


def test_cli_png_path_and_missing_metrics(tmp_path, capsys):
    metrics = tmp_path / "metrics.jsonl"
    _write_metrics(metrics, num_steps=4)
    png = tmp_path / "curves.png"
    plot_metrics.main([f"--metrics={metrics}", f"--out={png}"])
    assert capsys.readouterr().out.strip() == str(png)
    assert png.read_bytes().startswith(PNG_MAGIC)

    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"step": 1, "something/else": 1.0}) + "\n")
    with pytest.raises(ValueError, match=r"none of the plotted metrics.*something/else"):
        plot_metrics.plot_metrics(str(other), str(tmp_path), smooth=0.0)
