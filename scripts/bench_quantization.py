"""Quantized frozen base, measured: weight bytes, RL step time and peak RSS per format, and
greedy agreement with float32.

    python scripts/bench_quantization.py --out runs/bench_quantization.json
    python scripts/bench_quantization.py --variants none,nf4+scan --steps 4
    python scripts/bench_quantization.py --random-model qwen2.5-1.5b --variants none,nf4+scan

A variant is a `model.quantization.format` (none | int8 | nf4 | gguf), with `+scan` for
`model.scan_layers=True`. For each it runs `scripts/train.py` on configs/arithmetic.py
(SmolLM2-135M-Instruct, LoRA r8 on 7 projections, 8 prompts x 8 samples, beta 0.04: the
settings of scripts/bench_grpo.py) for `--steps` RL steps without evaluation, in its own
process (so each peak RSS, VmHWM, is that variant's alone), and reads the median step time
of steps 2.., the first step's time and compile seconds, and the process peak from its
metrics. Then, in this process, each variant's greedy completion of 3 chat prompts (32 new
tokens) is compared token by token with the first variant's.

`--random-model qwen2.5-1.5b` writes a checkpoint with random weights at Qwen2.5-1.5B's
dimensions (float32, 6.2 GB, SmolLM2's tokenizer) and runs one LoRA RL step per variant on
it, 2 prompts x 2 samples of 16 tokens (what fits this CPU), without the greedy check.
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


# Qwen2.5-1.5B's config.json dimensions (random weights: the memory and time of the
# shapes, not the model's outputs).
RANDOM_MODELS = {
    "qwen2.5-1.5b": {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_size": 1536,
        "intermediate_size": 8960,
        "num_hidden_layers": 28,
        "num_attention_heads": 12,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "max_position_embeddings": 32768,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-06,
        "hidden_act": "silu",
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
    }
}
SMALL_STEP = (
    "--config.rl.prompts_per_step=2",
    "--config.sampling.num_samples=2",
    "--config.sampling.max_new_tokens=16",
)


def parse_variant(variant: str) -> tuple[str, bool]:
    fmt, _, scan = variant.partition("+")
    if scan not in ("", "scan"):
        raise SystemExit(f"--variants: {variant!r} is not format[+scan]")
    return fmt, scan == "scan"


def train_metrics(variant: str, steps: int, workdir: Path, extra: tuple[str, ...]) -> dict:
    fmt, scan = parse_variant(variant)
    command = [
        sys.executable,
        str(REPO / "scripts" / "train.py"),
        f"--config={REPO / 'configs' / 'arithmetic.py'}",
        f"--workdir={workdir}",
        f"--config.max_steps={steps}",
        "--config.eval.every_steps=0",
        "--config.observers.tensorboard=False",
        "--config.compile_cache.enabled=False",  # every variant compiles from scratch
        f"--config.model.quantization.format={fmt}",
        f"--config.model.scan_layers={scan}",
        *extra,
    ]
    subprocess.run(command, check=True, capture_output=True, cwd=REPO)
    rows = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines() if x]
    train = [r for r in rows if "loss" in r]
    steady = [r["time/step_s"] for r in train[1:]] or [float("nan")]
    return {
        "median_step_s": statistics.median(steady),
        "first_step_s": train[0]["time/step_s"],
        "first_step_compile_s": train[0]["compile/seconds"],
        "peak_rss_mb": max(r["memory/host_peak_mb"] for r in train),
    }


def write_random_checkpoint(name: str, out: Path) -> Path:
    """A checkpoint directory with RANDOM_MODELS[name]'s config and N(0, 0.02) weights."""
    import shutil

    import numpy as np
    from safetensors.numpy import save_file
    from transformers import AutoConfig

    from rlvr_jax.models.config import DecoderConfig
    from rlvr_jax.models.hf_weights import weight_map
    from rlvr_jax.models.loading import resolve_checkpoint

    if (out / "model.safetensors").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(RANDOM_MODELS[name], indent=2))
    tokenizer_dir = resolve_checkpoint("smollm2-135m-instruct", None)
    for item in tokenizer_dir.iterdir():
        if item.name.startswith(("tokenizer", "special_tokens", "chat_template", "generation")):
            shutil.copy(item, out / item.name)
    cfg = DecoderConfig.from_hf(AutoConfig.from_pretrained(str(out)))
    rng = np.random.default_rng(0)
    tensors = {}
    for path, (hf_name, transposed) in weight_map(cfg).items():
        shape = _hf_shape(cfg, path, transposed)
        if path[-1] == "scale":
            tensors[f"model.{hf_name}"] = np.ones(shape, np.float32)
        elif path[-1] == "bias":
            tensors[f"model.{hf_name}"] = np.zeros(shape, np.float32)
        else:
            tensors[f"model.{hf_name}"] = rng.standard_normal(shape, np.float32) * 0.02
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


def _hf_shape(cfg, path: tuple[str, ...], transposed: bool) -> tuple[int, ...]:
    from rlvr_jax.models.hf_weights import expected_shape

    shape = expected_shape(cfg, path)
    return tuple(reversed(shape)) if transposed else shape


def greedy_tokens(variant: str) -> tuple[list[list[int]], int]:
    """Greedy completions of PROMPTS and the projection kernels' bytes, for one format."""
    import jax

    from rlvr_jax.config import ExperimentConfig
    from rlvr_jax.config_builder import sibling_config
    from rlvr_jax.models.quantization import kernel_bytes
    from rlvr_jax.parallel import make_mesh
    from rlvr_jax.run_setup import setup_run
    from rlvr_jax.sampling import SamplingConfig

    fmt, scan = parse_variant(variant)
    config = sibling_config(str(REPO / "configs" / "arithmetic.py"), "arithmetic")
    config.model.quantization.format = fmt
    config.model.scan_layers = scan
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
    parser.add_argument("--variants", default="none,none+scan,int8+scan,nf4+scan,gguf+scan")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--random-model", choices=sorted(RANDOM_MODELS))
    parser.add_argument("--work", type=Path, help="where the random checkpoint is written")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    variants = args.variants.split(",")
    for variant in variants:
        parse_variant(variant)
    extra: tuple[str, ...] = ()
    with tempfile.TemporaryDirectory() as tmp:
        if args.random_model:
            work = args.work or Path(tmp)
            ckpt = write_random_checkpoint(args.random_model, work / args.random_model)
            extra = (f"--config.model.checkpoint={ckpt}", *SMALL_STEP)
            args.steps = 1
        rows = {}
        for variant in variants:
            rows[variant] = train_metrics(variant, args.steps, Path(tmp) / variant, extra)
            print(f"[{variant}] {rows[variant]}", flush=True)
    if not args.random_model:
        reference = None
        for variant in variants:
            ids, nbytes = greedy_tokens(variant)
            reference = ids if reference is None else reference
            rows[variant] |= {
                "kernel_mb": nbytes / 2**20,
                "greedy_agreement": agreement(ids, reference),
            }
    print(table(rows))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=2) + "\n")


def table(rows: dict[str, dict]) -> str:
    base = next(iter(rows.values()))
    lines = [
        "| variant | kernel MB | x | first step s (compile) | median step s | x "
        "| peak RSS MB | x | greedy agree |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def ratio(r: dict, key: str) -> str:
        return f"{r[key] / base[key]:.2f}" if key in r else "-"

    for variant, r in rows.items():
        kernel = f"{r['kernel_mb']:.0f}" if "kernel_mb" in r else "-"
        agree = f"{r['greedy_agreement']:.1%}" if "greedy_agreement" in r else "-"
        lines.append(
            f"| {variant} | {kernel} | {ratio(r, 'kernel_mb')} | "
            f"{r['first_step_s']:.1f} ({r['first_step_compile_s']:.1f}) | "
            f"{r['median_step_s']:.1f} | {ratio(r, 'median_step_s')} | "
            f"{r['peak_rss_mb']:.0f} | {ratio(r, 'peak_rss_mb')} | {agree} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
