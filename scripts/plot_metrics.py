"""Training curves as one PNG, from a run's `metrics.jsonl`.

    python scripts/plot_metrics.py --metrics=/ckpt/run1/metrics.jsonl --out=/ckpt/run1
    python scripts/plot_metrics.py --metrics=run/metrics.jsonl --out=curves.png --smooth=0.9

One panel per entry of `PANELS` whose metrics appear in the file (the others are skipped);
x is the RL step. A metric `<key>` with `<key>/ci_low` and `<key>/ci_high` (the eval
accuracy's bootstrap interval) is drawn with its interval shaded. `--smooth` draws an
exponential moving average over the raw train curves (eval points are left as they are).
`--out` is a .png path, or a directory that receives `metrics.png`.
"""

from __future__ import annotations

import argparse
import fnmatch
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlvr_jax.observers.jsonl import read_jsonl

# (panel title, metric-name patterns (fnmatch; every match is one line), y label).
# Adding a panel is adding a line.
PANELS = (
    ("reward", ("reward/total/mean", "reward/*/mean"), "mean reward"),
    ("accuracy", ("reward/correct_frac", "eval/accuracy"), "fraction correct"),
    ("completion length", ("completion/length_mean",), "tokens"),
    ("KL to reference", ("kl/mean",), "KL"),
    ("clip fraction", ("policy/clip_frac*",), "fraction of tokens"),
    ("entropy", ("policy/entropy",), "nats per token"),
    ("loss", ("loss",), "loss"),
    ("gradient norm", ("grad/norm",), "global norm"),
    ("shaping vs correctness", ("reward/*/corr_with_correct",), "correlation"),
    ("PPO critic", ("value/loss", "value/explained_variance"), "value loss / explained var"),
    ("online DPO", ("dpo/margin", "dpo/accuracy", "dpo/skipped_frac"), "margin / fraction"),
)
CI_LOW, CI_HIGH = "/ci_low", "/ci_high"
EVAL_PREFIX = "eval/"
DEFAULT_FILE = "metrics.png"

Series = dict[str, tuple[list[int], list[float]]]


def load_series(rows: Sequence[Mapping[str, Any]]) -> Series:
    """Per metric, its (steps, values) sorted by step; a repeated step keeps its last value."""
    by_key: dict[str, dict[int, float]] = {}
    for row in rows:
        if "step" not in row or isinstance(row["step"], bool) or not isinstance(row["step"], int):
            continue
        step = row["step"]
        for key, value in row.items():
            if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            by_key.setdefault(key, {})[step] = float(value)
    return {
        key: (sorted(points), [points[s] for s in sorted(points)]) for key, points in by_key.items()
    }


def panel_keys(patterns: Sequence[str], keys: Sequence[str]) -> list[str]:
    """Metric names matching the patterns, in pattern order, each once, CI bounds excluded."""
    out: list[str] = []
    for pattern in patterns:
        for key in sorted(keys):
            is_bound = key.endswith((CI_LOW, CI_HIGH))
            if fnmatch.fnmatchcase(key, pattern) and not is_bound and key not in out:
                out.append(key)
    return out


def ema(values: Sequence[float], weight: float) -> list[float]:
    """Exponential moving average, bias-corrected (TensorBoard's smoothing); NaNs skipped."""
    out, last, norm = [], 0.0, 0.0
    for value in values:
        if math.isfinite(value):
            last = weight * last + (1 - weight) * value
            norm = weight * norm + (1 - weight)
        out.append(last / norm if norm > 0 else math.nan)
    return out


def output_path(out: str) -> Path:
    """`out` itself if it ends in .png, else `out/metrics.png`."""
    path = Path(out)
    return path if path.suffix.lower() == ".png" else path / DEFAULT_FILE


def plot_metrics(metrics_path: str, out: str, smooth: float) -> Path:
    """Write the panel grid for `metrics_path`; returns the PNG path."""
    if not 0.0 <= smooth < 1.0:
        raise ValueError(f"--smooth: an EMA weight in [0, 1), got {smooth}")
    series = load_series(read_jsonl(metrics_path))
    panels = [
        (title, keys, ylabel)
        for title, patterns, ylabel in PANELS
        if (keys := panel_keys(patterns, list(series)))
    ]
    if not panels:
        raise ValueError(
            f"{metrics_path}: none of the plotted metrics is present; found {sorted(series)}"
        )

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.4 * rows), squeeze=False)
    for ax, (title, keys, ylabel) in zip(axes.flat, panels, strict=False):
        for key in keys:
            _plot_one(ax, key, series, smooth)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(str(metrics_path), fontsize="small")
    fig.tight_layout()
    path = output_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _plot_one(ax: Any, key: str, series: Series, smooth: float) -> None:
    steps, values = series[key]
    sparse = key.startswith(EVAL_PREFIX)
    if sparse:
        (line,) = ax.plot(steps, values, marker="o", markersize=3, label=key)
    elif smooth > 0:
        (raw,) = ax.plot(steps, values, alpha=0.25)
        (line,) = ax.plot(steps, ema(values, smooth), color=raw.get_color(), label=key)
    else:
        (line,) = ax.plot(steps, values, label=key)
    low, high = key + CI_LOW, key + CI_HIGH
    if low in series and high in series and series[low][0] == series[high][0]:
        ax.fill_between(
            series[low][0], series[low][1], series[high][1], color=line.get_color(), alpha=0.2
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", required=True, help="a run's metrics.jsonl")
    parser.add_argument("--out", required=True, help="a .png path, or a directory for metrics.png")
    parser.add_argument("--smooth", type=float, default=0.0, help="EMA weight in [0, 1); 0 = raw")
    args = parser.parse_args(argv)
    print(plot_metrics(args.metrics, args.out, args.smooth))


if __name__ == "__main__":
    main()
