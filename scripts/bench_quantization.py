"""Quantized frozen base, measured: weight bytes, RL step time and peak RSS per format, and
greedy agreement with float32.

    python scripts/bench_quantization.py --out runs/bench_quantization.json
    python scripts/bench_quantization.py --formats none,nf4 --steps 4

For each `model.quantization.format` it runs `scripts/train.py` on configs/arithmetic.py
(SmolLM2-135M-Instruct, LoRA r8 on 7 projections, 8 prompts x 8 samples, beta 0.04) for
`--steps` RL steps without evaluation, in its own process (so each peak RSS, VmHWM, is that
format's alone), and reads the median step time of steps 2.. and the process peak from
its metrics. Then, in this process, each format's greedy completion of 3 chat prompts
(32 new tokens) is compared token by token with float32's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROMPTS = ("What is 17 + 43?", "Name three colours of the rainbow.", "What is 64 + 60?")


def train_metrics(fmt: str, steps: int, workdir: Path) -> dict:
    command = [
        sys.executable,
        str(REPO / "scripts" / "train.py"),
        f"--config={REPO / 'configs' / 'arithmetic.py'}",
        f"--workdir={workdir}",
        f"--config.max_steps={steps}",
        "--config.eval.every_steps=0",
        "--config.observers.tensorboard=False",
        f"--config.model.quantization.format={fmt}",
    ]
    subprocess.run(command, check=True, capture_output=True, cwd=REPO)
    rows = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines() if x]
    train = [r for r in rows if "loss" in r]
    return {
        "median_step_s": statistics.median(r["time/step_s"] for r in train[1:]),
        "peak_rss_mb": max(r["memory/host_peak_mb"] for r in train),
    }


def greedy_tokens(fmt: str) -> tuple[list[list[int]], int]:
    """Greedy completions of PROMPTS and the projection kernels' bytes, for one format."""
    import jax

    from rlvr_jax.config import ExperimentConfig
    from rlvr_jax.config_builder import sibling_config
    from rlvr_jax.models.quantization import kernel_bytes
    from rlvr_jax.parallel import make_mesh
    from rlvr_jax.run_setup import setup_run
    from rlvr_jax.sampling import SamplingConfig

    config = sibling_config(str(REPO / "configs" / "arithmetic.py"), "arithmetic")
    config.model.quantization.format = fmt
    exp = ExperimentConfig.from_config_dict(config)
    run = setup_run(exp, make_mesh(exp.mesh))
    greedy = SamplingConfig(
        num_samples=1,
        max_new_tokens=32,
        temperature=0.0,
        top_k=0,
        top_p=1.0,
        extra_stop_token_ids=(),
        prompt_buckets=(64,),
    )
    rows = [{"question": q, "answer": ""} for q in PROMPTS]
    out = run.policy.sample(
        None, run.prompt_ids(rows), jax.random.key(0), greedy, run.special_tokens
    )
    ids = [row[:n].tolist() for row, n in zip(out.ids, out.lengths, strict=True)]
    return ids, kernel_bytes(run.policy.base)


def agreement(a: list[list[int]], b: list[list[int]]) -> float:
    """Fraction of float32's greedy tokens matched, position by position, up to 32."""
    same = total = 0
    for x, y in zip(a, b, strict=True):
        total += len(y)
        same += sum(1 for i, t in enumerate(y) if i < len(x) and x[i] == t)
    return same / max(total, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--formats", default="none,int8,nf4,gguf")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    formats = args.formats.split(",")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in formats:
            rows[fmt] = train_metrics(fmt, args.steps, Path(tmp) / fmt)
            print(f"[{fmt}] {rows[fmt]}", flush=True)
    reference = None
    for fmt in formats:
        ids, nbytes = greedy_tokens(fmt)
        reference = ids if fmt == "none" or reference is None else reference
        rows[fmt] |= {"kernel_mb": nbytes / 2**20, "greedy_agreement": agreement(ids, reference)}
    base = rows[formats[0]]
    header = "| format | kernel MB | x | median step s | x | peak RSS MB | x | greedy agree |"
    print(header)
    print("|---|---|---|---|---|---|---|---|")
    for fmt, r in rows.items():
        print(
            f"| {fmt} | {r['kernel_mb']:.0f} | {r['kernel_mb'] / base['kernel_mb']:.2f} | "
            f"{r['median_step_s']:.1f} | {r['median_step_s'] / base['median_step_s']:.2f} | "
            f"{r['peak_rss_mb']:.0f} | {r['peak_rss_mb'] / base['peak_rss_mb']:.2f} | "
            f"{r['greedy_agreement']:.1%} |"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
