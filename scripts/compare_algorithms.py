"""GRPO vs PPO vs online DPO on one task: same seed, steps and samples; one table, one plot.

    python scripts/compare_algorithms.py --out=runs/compare               # 12 RL steps each
    python scripts/compare_algorithms.py --out=runs/compare --max_steps=24 \
        --algorithms=grpo:configs/arithmetic.py,ppo:configs/arithmetic_ppo.py
    python scripts/compare_algorithms.py --out=runs/sparse \
        --algorithms=grpo:configs/arithmetic.py,dapo:configs/arithmetic_dapo.py \
        --override=sampling.max_new_tokens=14 --override=eval.max_new_tokens=14

For each `name:config` pair it trains with `scripts/train.py` (a subprocess, workdir
`<out>/<name>`; an interrupted run resumes, a finished one is not retrained), then
evaluates the final checkpoint with `scripts/eval.py`'s library on the same held-out
questions (greedy, the first `--eval_questions`; `<out>/eval/<name>`), and the base model
once. Each algorithm is compared with the first one, paired by question (McNemar's exact
test on greedy correctness). Written: `<out>/comparison.md` and `.json` (accuracy with
its interval, paired difference and p-value, median and mean s/step, wall time) and
`<out>/comparison.png` (train accuracy per step and held-out greedy accuracy).
"""

from __future__ import annotations

import argparse
import ast
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ALGORITHMS = (
    "grpo:configs/arithmetic.py,ppo:configs/arithmetic_ppo.py,dpo:configs/arithmetic_dpo.py"
)


def parse_algorithms(spec: str) -> list[tuple[str, Path]]:
    pairs = []
    for item in spec.split(","):
        name, sep, config = item.partition(":")
        if not sep or not name or not config:
            raise SystemExit(f"--algorithms: {item!r} is not name:config_file")
        path = Path(config) if Path(config).is_absolute() else REPO / config
        if not path.is_file():
            raise SystemExit(f"--algorithms: {name}: config file {path} not found")
        pairs.append((name, path))
    if len({n for n, _ in pairs}) != len(pairs):
        raise SystemExit("--algorithms: names must be distinct")
    return pairs


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings every algorithm shares (config keys)."""
    shared = {"max_steps": args.max_steps, "seed": args.seed}
    for item in args.override:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--override: {item!r} is not key=value")
        try:
            shared[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            shared[key] = value  # a plain string
    return shared


def set_key(config: Any, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = config
    for key in parents:
        node = node[key]
    node[leaf] = value


def finished(workdir: Path, max_steps: int) -> bool:
    final = workdir / "final_metrics.json"
    return final.is_file() and json.loads(final.read_text()).get("step") == max_steps


def train(name: str, config: Path, workdir: Path, args: argparse.Namespace) -> None:
    if finished(workdir, args.max_steps):
        print(f"[{name}] already trained to step {args.max_steps}: {workdir}", flush=True)
        return
    command = [
        sys.executable,
        str(REPO / "scripts" / "train.py"),
        f"--config={config}",
        f"--workdir={workdir}",
        *(f"--config.{k}={v}" for k, v in overrides(args).items()),
    ]
    print(f"[{name}] {' '.join(command)}", flush=True)
    subprocess.run(command, check=True)


def load_config(path: Path, args: argparse.Namespace) -> Any:
    from rlvr_jax.config_builder import sibling_config

    config = sibling_config(str(path), path.stem)
    for key, value in overrides(args).items():
        set_key(config, key, value)
    config.eval.max_samples = args.eval_questions
    config.eval.num_samples = 0  # greedy
    return config


def evaluate(config: Any, workdir: Path | None, out: Path) -> dict:
    from rlvr_jax.evaluation.evaluate_run import REPORT_JSON, evaluate_run

    if (out / REPORT_JSON).is_file():
        return json.loads((out / REPORT_JSON).read_text())["summary"]
    return evaluate_run(config, workdir, out)


def step_times(workdir: Path) -> list[float]:
    from rlvr_jax.observers.jsonl import read_jsonl

    return [r["time/step_s"] for r in read_jsonl(workdir / "metrics.jsonl") if "time/step_s" in r]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--algorithms", default=DEFAULT_ALGORITHMS)
    parser.add_argument("--max_steps", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval_questions", type=int, default=200)
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        help="key=value for every algorithm (repeatable), e.g. sampling.max_new_tokens=14",
    )
    args = parser.parse_args()
    algorithms = parse_algorithms(args.algorithms)

    for name, config in algorithms:
        train(name, config, args.out / name, args)

    from rlvr_jax.config_builder import build
    from rlvr_jax.evaluation.evaluate_run import compare_dirs
    from rlvr_jax.evaluation.scoring import correctness_mode
    from rlvr_jax.rewards import RewardsConfig

    first_name, first_config = algorithms[0]
    base_config = load_config(first_config, args)
    mode = correctness_mode(build(RewardsConfig, base_config.rewards, "rewards"))
    metric = f"greedy/accuracy_{mode}"
    evals = args.out / "eval"
    summaries = {"base": evaluate(base_config, None, evals / "base")}
    rows = []
    for name, config in algorithms:
        cfg = load_config(config, args)
        summaries[name] = evaluate(cfg, args.out / name, evals / name)
        times = step_times(args.out / name)
        row = {
            "algorithm": name,
            "config": str(config.relative_to(REPO) if config.is_relative_to(REPO) else config),
            **summaries[name]["metrics"][metric],
            "median_step_s": statistics.median(times),
            "mean_step_s": statistics.fmean(times),
            "train_wall_s": sum(times),
        }
        if name != first_name:
            paired_dir = evals / f"{name}_vs_{first_name}"
            paired = compare_dirs(cfg, evals / name, evals / first_name, paired_dir)
            paired = paired["metrics"][metric]
            row |= {"difference": paired["difference"], "p_value": paired["p_value"]}
        rows.append(row)

    base = summaries["base"]["metrics"][metric]
    report = {
        "metric": metric,
        "settings": {**overrides(args), "eval_questions": args.eval_questions},
        "base": base,
        "rows": rows,
    }
    (args.out / "comparison.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "comparison.md").write_text(markdown(report, first_name))
    plot(algorithms, args.out, report, args.out / "comparison.png")
    print((args.out / "comparison.md").read_text())


def markdown(report: dict, reference: str) -> str:
    settings = report["settings"]
    base = report["base"]
    lines = [
        f"Held-out {report['metric']} on {settings['eval_questions']} questions after "
        f"{settings['max_steps']} RL steps (seed {settings['seed']}); base model "
        f"{base['mean']:.1%} [{base['ci_low']:.1%}, {base['ci_high']:.1%}].",
        "",
        f"| algorithm | accuracy [95% CI] | vs {reference} (paired) | McNemar p | "
        "median s/step | train wall |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        diff = f"{r['difference']:+.1%}" if "difference" in r else "-"
        p = f"{r['p_value']:.2g}" if "p_value" in r else "-"
        lines.append(
            f"| {r['algorithm']} | {r['mean']:.1%} [{r['ci_low']:.1%}, {r['ci_high']:.1%}] | "
            f"{diff} | {p} | {r['median_step_s']:.1f} | {r['train_wall_s'] / 60:.1f} min |"
        )
    return "\n".join(lines) + "\n"


def plot(algorithms, out: Path, report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rlvr_jax.observers.jsonl import read_jsonl

    fig, (ax_train, ax_eval) = plt.subplots(1, 2, figsize=(11, 4))
    for name, _ in algorithms:
        rows = read_jsonl(out / name / "metrics.jsonl")
        train = [(r["step"], r["reward/correct_frac"]) for r in rows if "reward/correct_frac" in r]
        evals = [(r["step"], r["eval/accuracy"]) for r in rows if "eval/accuracy" in r]
        ax_train.plot(*zip(*train, strict=True), marker=".", label=name)
        ax_eval.plot(*zip(*evals, strict=True), marker="o", label=name)
    ax_train.set(title="train: sampled accuracy per step", xlabel="RL step", ylabel="fraction")
    ax_eval.set(title="held-out greedy accuracy", xlabel="RL step", ylabel="fraction")
    for ax in (ax_train, ax_eval):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
