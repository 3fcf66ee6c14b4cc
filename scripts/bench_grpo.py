"""GRPO step benchmark: ours vs TRL's GRPOTrainer at identical settings, same machine, same run.

    python scripts/bench_grpo.py                         # beta 0.04 and 0, fp32, 1 + 3 steps
    python scripts/bench_grpo.py --betas 0.04 --steps 5 --out runs/bench_grpo.json
    python scripts/bench_grpo.py --task=gsm8k --max_new_tokens=256 --betas 0.04
    pip install -e '.[bench]'                            # trl + peft for the TRL side

Settings (issue 8): SmolLM2-135M-Instruct, LoRA r=8 alpha=16 on q k v o gate up down,
8 prompts x 8 completions, at most 32 new tokens at temperature 1, 2-digit addition prompts
(configs/arithmetic.py's task and chat template), reward 1 when the last integer of the
completion is the sum, the 'grpo' loss, AdamW lr 4e-4. `--task=gsm8k` takes the prompts
from GSM8K's train split instead (`--data_path`, default ../shared/data/gsm8k: the question
as the user turn, as for arithmetic; reward 1 when the last number is the answer), for
GSM8K-length rollouts (`--max_new_tokens` 256 or 512). Both sides get the same prompts in
the same order (token ids checked equal) and run in their own process, one after the other,
so each peak RSS (VmHWM) is that side's alone. TRL runs with its defaults otherwise
(gradient checkpointing on; `--trl_no_gradient_checkpointing` turns it off); ours
rematerializes by `--remat` (`rl.remat`: none; full = TRL's gradient checkpointing; or a
policy that keeps named activations, e.g. save_qkv_attention_mlp: the query, key, value,
attention output and the MLP's gate/up) and
accumulates over `--microbatches` (`rl.num_microbatches`: the same gradient, a lower peak).

Reported per side: per-phase seconds (generation, reference/old logprobs, forward+backward,
optimizer, rewards), the median step after `--warmup` steps, compile time (ours: XLA
compilations in step 1), completion tokens/s, peak RSS, and the ratio ours / TRL. The
train-step roofline fraction is model FLOPs of the scoring and forward+backward phases
(``rlvr_jax.flops``) over the fp32 matmul peak this script measures. On a machine with a GPU
both sides use it (JAX's default backend; TRL when torch sees CUDA); `--checkpoint` takes
any checkpoint string `model.checkpoint` accepts, for a larger model there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHASES = ("sample", "score", "train", "optimizer", "reward")
PHASE_TITLES = {
    "sample": "generation",
    "score": "ref/old logprobs",
    "train": "fwd+bwd",
    "optimizer": "optimizer",
    "reward": "rewards",
}
# The settings, shared by both sides.
PROMPTS_PER_STEP = 8
GROUP_SIZE = 8  # completions per prompt
ROWS_PER_STEP = PROMPTS_PER_STEP * GROUP_SIZE
LORA_RANK, LORA_ALPHA = 8, 16.0
LORA_TARGETS = ("q", "k", "v", "o", "gate", "up", "down")
# models.decoder.REMAT_POLICIES' names, not imported: the TRL worker imports no JAX
# (tests/test_remat.py keeps the two equal).
REMAT_CHOICES = (
    "none",
    "full",
    "save_dots",
    "save_attention",
    "save_attention_mlp",
    "save_qkv_attention_mlp",
)
LEARNING_RATE = 4e-4


# ----------------------------------------------------------------------------- ours


def ours_config(args, beta: float, dtype: str, max_steps: int):
    from rlvr_jax.config_builder import sibling_config

    c = sibling_config(str(REPO / "configs" / "arithmetic.py"), "arithmetic")
    if args.task == "gsm8k":
        c.data.name, c.data.path, c.data.subset = "gsm8k", args.data_path, ""
        c.data.split, c.data.eval_split = "train", "test"
        gsm8k = sibling_config(str(REPO / "configs" / "gsm8k.py"), "gsm8k")
        c.sampling.prompt_buckets = gsm8k.sampling.prompt_buckets
    c.model.checkpoint = args.checkpoint
    c.model.dtype = dtype
    c.max_steps = max_steps
    c.lora.rank, c.lora.alpha, c.lora.targets = LORA_RANK, LORA_ALPHA, LORA_TARGETS
    c.sampling.num_samples = GROUP_SIZE
    c.sampling.max_new_tokens = args.max_new_tokens
    c.sampling.temperature = 1.0
    c.rl.prompts_per_step = PROMPTS_PER_STEP
    c.rl.beta = beta
    c.rl.loss_type = "grpo"
    c.rl.remat = args.remat
    c.rl.num_microbatches = args.microbatches
    c.optim.learning_rate = LEARNING_RATE
    c.eval.every_steps = 0
    c.checkpoint.every_steps = max_steps
    c.observers.console = False
    c.observers.tensorboard = False
    return c


def write_prompts(args, path: Path) -> None:
    """The rows each step trains on, in order, with their chat token ids (ours)."""
    from rlvr_jax.config import ExperimentConfig
    from rlvr_jax.parallel import make_mesh
    from rlvr_jax.run_setup import setup_run

    config = ours_config(args, 0.0, "float32", args.warmup + args.steps)
    exp = ExperimentConfig.from_config_dict(config)
    run = setup_run(exp, make_mesh(exp.mesh))
    iterator = run.iterator(None)
    steps = []
    for _ in range(config.max_steps):
        rows = next(iterator)
        steps.append(
            [
                {"question": r["question"], "answer": r["answer"], "prompt_ids": ids}
                for r, ids in zip(rows, run.prompt_ids(rows), strict=True)
            ]
        )
    path.write_text(json.dumps({"checkpoint_dir": str(run.checkpoint_dir), "steps": steps}))


def run_ours(args, beta: float, dtype: str, workdir: Path) -> dict:
    from rlvr_jax.models import load_decoder_config
    from rlvr_jax.train import train_and_evaluate

    config = ours_config(args, beta, dtype, args.warmup + args.steps)
    train_and_evaluate(config, workdir)
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "loss" in r]
    prompts = json.loads(Path(args.prompts).read_text())
    cfg = load_decoder_config(prompts["checkpoint_dir"])
    steps = []
    for row, step_prompts in zip(rows, prompts["steps"], strict=True):
        tokens = row["throughput/tokens_per_s"] * row["time/step_s"]
        steps.append(
            {
                "step_s": row["time/step_s"],
                "sample_s": row["time/sample_s"],
                "score_s": row["time/score_s"],
                "train_s": row["time/train_s"],
                "optimizer_s": None,  # fused into the jitted train step
                "reward_s": row["time/reward_s"],
                "completion_tokens": tokens,
                "compile_s": row["compile/seconds"],
                "compile_count": row["compile/count"],
                "train_flops": train_flops(cfg, step_prompts, beta, args.max_new_tokens),
            }
        )
    return {"steps": steps, "peak_rss_mb": rows[-1]["memory/host_peak_mb"]}


def train_flops(cfg, step_prompts: list[dict], beta: float, new_tokens: int) -> float:
    """Model FLOPs of scoring + forward/backward for one step (module docstring of flops.py).

    Each prompt once (shared across its group), G * L completion positions through the
    blocks and the LM head; the backward through frozen weights costs one more forward.
    """
    from rlvr_jax.flops import forward_flops

    prompt_positions = sum(len(p["prompt_ids"]) for p in step_prompts)
    completions = GROUP_SIZE * len(step_prompts) * new_tokens
    mean_context = prompt_positions / len(step_prompts) + new_tokens / 2
    fwd = forward_flops(cfg, prompt_positions + completions, completions, mean_context)
    return fwd * (3 if beta > 0 else 2)


# ----------------------------------------------------------------------------- TRL


def last_number(text: str) -> float | None:
    found = re.findall(r"-?\d+(?:\.\d+)?", text.replace(",", ""))
    return float(found[-1]) if found else None


def run_trl(args, beta: float, dtype: str, workdir: Path) -> dict:
    """TRL's GRPOTrainer on the same prompts; imports torch/trl only (no JAX in this process)."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    # This module imports neither JAX nor torch: the process's memory stays TRL's own.
    from rlvr_jax.observers.metrics import host_peak_rss_mb, phase_key, timed

    torch.manual_seed(0)
    prompts = json.loads(Path(args.prompts).read_text())
    ckpt = prompts["checkpoint_dir"]
    tokenizer = AutoTokenizer.from_pretrained(ckpt)
    rows = [r for step in prompts["steps"] for r in step]
    for r in rows:
        messages = [{"role": "user", "content": r["question"]}]
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
        if list(ids) != r["prompt_ids"]:
            raise SystemExit(f"TRL's chat prompt differs from ours for {r['question']!r}")
    dataset = Dataset.from_list(
        [
            {"prompt": [{"role": "user", "content": r["question"]}], "answer": r["answer"]}
            for r in rows
        ]
    )

    def last_number_reward(completions, answer, **_):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        pairs = zip(texts, answer, strict=True)  # answers are normalized numbers
        return [float(last_number(t) == float(a)) for t, a in pairs]

    torch_dtype = torch.bfloat16 if dtype == "bfloat16" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32)
    grpo = GRPOConfig(
        output_dir=str(workdir),
        per_device_train_batch_size=ROWS_PER_STEP,
        num_generations=GROUP_SIZE,
        max_completion_length=args.max_new_tokens,
        temperature=1.0,
        beta=beta,
        loss_type="grpo",
        learning_rate=LEARNING_RATE,
        lr_scheduler_type="constant",
        adam_beta2=0.99,
        weight_decay=0.0,
        max_grad_norm=1.0,
        max_steps=args.warmup + args.steps,
        shuffle_dataset=False,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        bf16=torch_dtype == torch.bfloat16,
        gradient_checkpointing=not args.trl_no_gradient_checkpointing,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=True,
        seed=0,
    )
    lora = LoraConfig(
        r=LORA_RANK,
        lora_alpha=LORA_ALPHA,
        lora_dropout=0.0,
        target_modules=[f"{t}_proj" for t in LORA_TARGETS],
        task_type="CAUSAL_LM",
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=last_number_reward,
        args=grpo,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora,
    )
    phases: dict[str, float] = {}  # time/<phase>_s, summed within a step

    def timed_calls(phase, fn, when=lambda: True):
        def wrapper(*a, **k):
            if not when():
                return fn(*a, **k)
            with timed(phase, phases):
                return fn(*a, **k)

        return wrapper

    trainer._generate = timed_calls("sample", trainer._generate)
    trainer._calculate_rewards = timed_calls("reward", trainer._calculate_rewards)
    trainer._get_per_token_logps_and_entropies = timed_calls(
        "score", trainer._get_per_token_logps_and_entropies, lambda: not torch.is_grad_enabled()
    )
    trainer._prepare_inputs = timed_calls("prepare", trainer._prepare_inputs)
    trainer.training_step = timed_calls("training_step", trainer.training_step)
    steps: list[dict] = []

    class StepTimes(TrainerCallback):
        def on_step_begin(self, *a, **k):
            phases.clear()
            self.t0 = time.perf_counter()

        def on_pre_optimizer_step(self, *a, **k):
            self.t_opt = time.perf_counter()

        def on_optimizer_step(self, *a, **k):
            phases[phase_key("optimizer")] = time.perf_counter() - self.t_opt

        def on_step_end(self, *a, **k):
            step_s = time.perf_counter() - self.t0
            seconds = lambda phase: phases[phase_key(phase)]
            steps.append(
                {
                    "step_s": step_s,
                    "sample_s": seconds("sample"),
                    "score_s": phases.get(phase_key("score"), 0.0),  # none at beta 0, mu 1
                    "train_s": seconds("training_step") - seconds("prepare"),
                    "optimizer_s": seconds("optimizer"),
                    "reward_s": seconds("reward"),
                }
            )

        def on_log(self, args_, state, control, logs=None, **k):
            if logs and "completions/mean_length" in logs and steps:
                steps[-1]["completion_tokens"] = logs["completions/mean_length"] * ROWS_PER_STEP

    trainer.add_callback(StepTimes())
    trainer.train()
    return {"steps": steps, "peak_rss_mb": host_peak_rss_mb()}


# ----------------------------------------------------------------------------- driver


def worker(args) -> None:
    if args.worker == "ours":
        # As in a torch-free install of the product: transformers imports torch whenever
        # it is installed (it is here, for TRL), which would add torch's memory to our RSS.
        # Hidden while transformers asks (the answer is cached), then unhidden: datasets'
        # pickler uses any "torch" entry in sys.modules. The check after the run fails if
        # anything imported it anyway.
        sys.modules["torch"] = None
        from transformers.utils import import_utils

        import_utils.is_torch_available()
        del sys.modules["torch"]
    if args.worker == "prompts":
        write_prompts(args, Path(args.prompts))
        return
    run = run_ours if args.worker == "ours" else run_trl
    with tempfile.TemporaryDirectory(prefix=f"bench_grpo_{args.worker}_") as workdir:
        result = run(args, args.beta, args.dtype, Path(workdir))
    if args.worker == "ours" and "torch" in sys.modules:
        raise SystemExit("torch was imported by our side: its memory would count as ours")
    Path(args.result).write_text(json.dumps(result))


def spawn(args, side: str, beta: float, dtype: str, tmp: Path) -> dict | None:
    result = tmp / f"{side}_{beta}_{dtype}.json"
    cmd = [
        sys.executable,
        __file__,
        f"--worker={side}",
        f"--beta={beta}",
        f"--dtype={dtype}",
        f"--prompts={tmp / 'prompts.json'}",
        f"--result={result}",
        f"--checkpoint={args.checkpoint}",
        f"--steps={args.steps}",
        f"--warmup={args.warmup}",
        f"--max_new_tokens={args.max_new_tokens}",
        f"--task={args.task}",
        f"--data_path={args.data_path}",
        f"--remat={args.remat}",
        f"--microbatches={args.microbatches}",
    ]
    if args.trl_no_gradient_checkpointing:
        cmd.append("--trl_no_gradient_checkpointing")
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    log = tmp / f"{side}_{beta}_{dtype}.log"
    t0 = time.perf_counter()
    with log.open("w") as f:
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    if code:
        print(f"{side} (beta {beta}, {dtype}) failed with exit code {code}; log: {log}")
        print(log.read_text()[-3000:])
        return None
    out = json.loads(result.read_text())
    out["wall_s"] = time.perf_counter() - t0
    return out


def summarize(out: dict, warmup: int) -> dict:
    timed = out["steps"][warmup:]
    med = lambda key: (
        statistics.median(s[key] for s in timed) if timed[0][key] is not None else None
    )
    summary = {f"{p}_s": med(f"{p}_s") for p in PHASES}
    summary["step_s"] = med("step_s")
    tokens = [s["completion_tokens"] for s in timed if s.get("completion_tokens")]
    summary["tokens_per_s"] = sum(tokens) / sum(s["step_s"] for s in timed) if tokens else None
    first = out["steps"][0]
    summary["first_step_s"] = first["step_s"]
    summary["compile_s"] = first.get("compile_s")
    summary["recompiles_after_step_1"] = sum(s.get("compile_count") or 0 for s in out["steps"][1:])
    summary["train_flops"] = timed[0].get("train_flops")
    summary["peak_rss_mb"] = out["peak_rss_mb"]
    return summary


def fmt(x, unit="") -> str:
    return "-" if x is None else f"{x:.1f}{unit}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default="smollm2-135m-instruct")
    parser.add_argument("--betas", type=float, nargs="+", default=[0.04, 0.0])
    parser.add_argument("--dtypes", nargs="+", default=["float32"])
    parser.add_argument("--steps", type=int, default=3, help="timed steps after the warm-up")
    parser.add_argument("--warmup", type=int, default=1, help="untimed first steps (compile)")
    parser.add_argument("--max_new_tokens", type=int, default=32)
    parser.add_argument("--task", choices=["arithmetic", "gsm8k"], default="arithmetic")
    parser.add_argument(
        "--remat",
        choices=REMAT_CHOICES,
        default="full",
        help="ours: rl.remat",
    )
    parser.add_argument(
        "--microbatches",
        type=int,
        default=1,
        help="ours: rl.num_microbatches (the same gradient, a lower peak)",
    )
    parser.add_argument(
        "--data_path", default=str(REPO.parent / "shared" / "data" / "gsm8k"), help="GSM8K"
    )
    parser.add_argument("--no_trl", action="store_true", help="skip TRL even if installed")
    parser.add_argument("--trl_no_gradient_checkpointing", action="store_true")
    parser.add_argument("--out", help="write the rows as JSON to this file")
    parser.add_argument("--keep", help="keep worker logs and prompts in this directory")
    # Internal: one side in its own process.
    parser.add_argument("--worker", choices=["prompts", "ours", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--beta", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--dtype", help=argparse.SUPPRESS)
    parser.add_argument("--prompts", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    tmp = Path(args.keep or tempfile.mkdtemp(prefix="bench_grpo_"))
    tmp.mkdir(parents=True, exist_ok=True)
    has_trl = not args.no_trl and _importable("trl") and _importable("peft")
    if not args.no_trl and not has_trl:
        print("trl/peft not installed (pip install -e '.[bench]'): ours only")
    subprocess.check_call(
        [
            sys.executable,
            __file__,
            "--worker=prompts",
            f"--prompts={tmp / 'prompts.json'}",
            f"--checkpoint={args.checkpoint}",
            f"--steps={args.steps}",
            f"--warmup={args.warmup}",
            f"--max_new_tokens={args.max_new_tokens}",
            f"--task={args.task}",
            f"--data_path={args.data_path}",
            f"--remat={args.remat}",
            f"--microbatches={args.microbatches}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = _matmul_peak()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; fp32 "
        f"matmul peak {peak / 1e9:.1f} GFLOP/s; {args.warmup} warm-up + {args.steps} timed "
        f"steps; {args.task}, 8 prompts x 8 completions, <= {args.max_new_tokens} new tokens; "
        f"ours rl.remat={args.remat}, rl.num_microbatches={args.microbatches}; "
        f"logs in {tmp}"
    )
    rows = []
    for dtype in args.dtypes:
        for beta in args.betas:
            results = {"ours": spawn(args, "ours", beta, dtype, tmp)}
            if has_trl:
                results["trl"] = spawn(args, "trl", beta, dtype, tmp)
            sums = {k: summarize(v, args.warmup) for k, v in results.items() if v is not None}
            print(f"\nbeta {beta}, {dtype} (median seconds per step after warm-up)")
            print(f"{'':>18}" + "".join(f"{s:>10}" for s in sums))
            for phase in PHASES:
                line = "".join(f"{fmt(s[f'{phase}_s']):>10}" for s in sums.values())
                print(f"{PHASE_TITLES[phase]:>18}{line}")
            for key, title, unit in [
                ("step_s", "step", ""),
                ("first_step_s", "first step", ""),
                ("compile_s", "compile", ""),
                ("tokens_per_s", "tokens/s", ""),
                ("peak_rss_mb", "peak RSS MB", ""),
            ]:
                print(f"{title:>18}" + "".join(f"{fmt(s[key], unit):>10}" for s in sums.values()))
            ours, trl = sums.get("ours"), sums.get("trl")
            roofline = None
            if ours:
                train_s = ours["score_s"] + ours["train_s"]
                roofline = ours["train_flops"] / train_s / peak
                print(f"{'train roofline':>18}{roofline:>10.1%}")
                print(f"{'recompiles 2..N':>18}{ours['recompiles_after_step_1']:>10.0f}")
            ratio = ours["step_s"] / trl["step_s"] if ours and trl else None
            if ratio is not None:
                print(f"ours / TRL step time: {ratio:.2f}x (TRL {1 / ratio:.2f}x slower)")
            rows.append(
                {
                    "task": args.task,
                    "max_new_tokens": args.max_new_tokens,
                    "ours_remat": args.remat,
                    "ours_microbatches": args.microbatches,
                    "beta": beta,
                    "dtype": dtype,
                    "ours_step_s": _round(ours and ours["step_s"]),
                    "trl_step_s": _round(trl and trl["step_s"]),
                    "ratio": _round(ratio, 3),
                    "ours_peak_rss_mb": _round(ours and ours["peak_rss_mb"]),
                    "trl_peak_rss_mb": _round(trl and trl["peak_rss_mb"]),
                    "train_roofline_fraction": _round(roofline, 4),
                    "phases": sums,
                }
            )
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
        print(f"wrote {args.out}")


def _round(x, digits=2):
    return None if x is None else round(x, digits)


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _matmul_peak() -> float:
    out = subprocess.check_output(
        [sys.executable, "-c", "from rlvr_jax.flops import matmul_peak_flops as f; print(f())"],
        stderr=subprocess.DEVNULL,
    )
    return float(out.split()[-1])


if __name__ == "__main__":
    main()
