"""Sampler benchmark: our KV-cache sampler vs transformers `generate`, same machine, same run.

    python scripts/bench_sampler.py              # batches 1 8 32 64 in fp32, bf16 at batch 1
    python scripts/bench_sampler.py --batches 1 32 --repeats 3 --out bench.json
    python scripts/bench_sampler.py --layers unrolled scanned --dtypes float32 --no_hf

SmolLM2-135M-Instruct, one chat prompt repeated over the batch, `--new_tokens` new tokens
with stopping disabled on both sides, sampling at temperature 1 with no top-k/top-p.
Reports new tokens/s (median of `--repeats` after a warm-up), the ratio to HF, and our
fraction of the matmul roofline: achieved FLOP/s over the peak of a large jitted matmul
measured by this script on this machine. `--layers` picks the decoder's layer loop
(`unrolled`, or `scanned`: `model.scan_layers`); the first call's time (trace + compile +
one run) is reported beside the steady tokens/s.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import time

import jax

from rlvr_jax.flops import decode_flops_per_token, matmul_peak_flops
from rlvr_jax.models import load_decoder_config, load_tokenizer, render_chat, resolve_checkpoint
from rlvr_jax.models.hf_weights import load_hf_params
from rlvr_jax.sampling import SamplingConfig, SpecialTokens, generate

PROMPT = [{"role": "user", "content": "Write a short story about a robot who learns to paint."}]


def time_call(fn, repeats: int) -> tuple[float, float]:
    """(median seconds of `repeats` calls, seconds of the first call: compile included)."""
    t0 = time.perf_counter()
    fn()  # warm-up (and compile)
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), first


def bench_ours(ckpt, cfg, prompt_ids, batch, new_tokens, dtype, repeats, scan):
    from rlvr_jax.models import Decoder
    from rlvr_jax.models.layer_stack import stack_layers

    params = load_hf_params(ckpt, cfg, dtype)
    model = Decoder(cfg, scan_layers=scan)
    if scan:  # as the policy holds it: stacked once
        params = stack_layers(params)
    sampling = SamplingConfig(
        num_samples=1,
        max_new_tokens=new_tokens,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        extra_stop_token_ids=(),
        prompt_buckets=(64, 128, 256, 512),
    )
    no_stops = SpecialTokens(stop_token_ids=(), pad_token_id=0)  # every row runs new_tokens
    prompts = [prompt_ids] * batch
    keys = iter(jax.random.split(jax.random.key(0), repeats + 1))

    def run():
        out = generate(model, {"params": params}, prompts, next(keys), sampling, no_stops)
        assert int(out.lengths.min()) == new_tokens
        out.ids.block_until_ready()

    seconds, first = time_call(run, repeats)
    return batch * new_tokens / seconds, first


def bench_hf(ckpt, prompt_ids, batch, new_tokens, repeats):
    import torch
    import transformers as tf

    model = tf.AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32).eval()
    inputs = torch.tensor([prompt_ids] * batch)
    mask = torch.ones_like(inputs)

    def run():
        with torch.no_grad():
            out = model.generate(
                input_ids=inputs,
                attention_mask=mask,
                do_sample=True,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                pad_token_id=0,
            )
        assert out.shape[1] == inputs.shape[1] + new_tokens

    return batch * new_tokens / time_call(run, repeats)[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default="smollm2-135m-instruct")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--new_tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument(
        "--bf16_batches",
        type=int,
        nargs="+",
        default=[1],
        help="batches for bfloat16 (XLA:CPU has no fast bf16 dot: large batches take long)",
    )
    parser.add_argument(
        "--layers", nargs="+", default=["unrolled"], choices=["unrolled", "scanned"]
    )
    parser.add_argument("--no_hf", action="store_true", help="skip the transformers baseline")
    parser.add_argument("--out", help="write the rows as JSON to this file")
    args = parser.parse_args()

    ckpt = resolve_checkpoint(args.checkpoint)
    cfg = load_decoder_config(ckpt)
    prompt_ids = render_chat(load_tokenizer(ckpt), PROMPT)
    peak = matmul_peak_flops()
    context = len(prompt_ids) + args.new_tokens / 2
    flops_per_token = decode_flops_per_token(cfg, int(context))
    print(
        f"machine: {platform.processor() or platform.machine()}, {jax.device_count()} "
        f"{jax.devices()[0].platform} device(s); matmul peak {peak / 1e9:.1f} GFLOP/s fp32"
    )
    print(
        f"prompt: {len(prompt_ids)} tokens; {args.new_tokens} new tokens; median of "
        f"{args.repeats} after a warm-up"
    )

    hf = {}
    if not args.no_hf:
        for batch in args.batches:
            hf[batch] = bench_hf(ckpt, prompt_ids, batch, args.new_tokens, args.repeats)

    rows = []
    header = (
        f"{'batch':>5} {'dtype':>9} {'layers':>9} {'ours tok/s':>11} {'first call s':>12} "
        f"{'HF fp32 tok/s':>14} {'ratio':>6} {'roofline':>8}"
    )
    print(header)
    for dtype, layers in itertools.product(args.dtypes, args.layers):
        for batch in args.bf16_batches if dtype == "bfloat16" else args.batches:
            ours, first = bench_ours(
                ckpt,
                cfg,
                prompt_ids,
                batch,
                args.new_tokens,
                dtype,
                args.repeats,
                scan=layers == "scanned",
            )
            ref = hf.get(batch)
            row = {
                "batch": batch,
                "dtype": dtype,
                "layers": layers,
                "ours_tokens_per_s": round(ours, 2),
                "first_call_s": round(first, 2),
                "hf_tokens_per_s": None if ref is None else round(ref, 2),
                "ratio": None if ref is None else round(ours / ref, 3),
                "roofline_fraction": round(ours * flops_per_token / peak, 4),
            }
            rows.append(row)
            print(
                f"{batch:>5} {dtype:>9} {layers:>9} {ours:>11.1f} {first:>12.1f} "
                f"{'-' if ref is None else f'{ref:.1f}':>14} "
                f"{'-' if ref is None else f'{ours / ref:.2f}x':>6} "
                f"{row['roofline_fraction']:>8.1%}"
            )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=2)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
