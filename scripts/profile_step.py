"""Where a config's RL step spends its time: the sampler, the rollout scorer and the GRPO
train step, timed, then traced op by op (XLA:CPU thunks) with each matmul's FLOP/s.

    python scripts/profile_step.py --config=configs/gsm8k.py --prompt_len=256
    python scripts/profile_step.py --config=configs/gsm8k.py --prompt_len=256 \\
        --phases=train --top=40 --out=runs/profile_train.json

The programs are those `scripts/train.py` runs (the config's model, LoRA, `rl.remat`,
`rl.num_microbatches`, sampler settings), built on random weights of the checkpoint's
shapes (its config.json alone, as scripts/memory_analysis.py): speed does not depend on
the values. Each phase runs once to compile, `--repeats` times timed, then once under
`jax.profiler.trace`; the table joins the trace with the optimized HLO that XLA dumps
(`rlvr_jax/op_profile.py`). Synthetic rows: `rl.prompts_per_step` prompts of
`--prompt_len` slots, each filled to `--prompt_fill` of them, and completions of
`sampling.max_new_tokens`. Random weights rarely emit a stop token, so the sampler decodes
all `max_new_tokens` steps: the cost of a batch whose longest row hits the cap.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
import time

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.")
_PROMPT_LEN = flags.DEFINE_integer("prompt_len", None, "Prompt slots (the sampler's bucket).")
_PROMPT_FILL = flags.DEFINE_float("prompt_fill", 0.6, "Real tokens per prompt, as a fraction.")
_PHASES = flags.DEFINE_list("phases", ["sample", "score", "train"], "sample, score, train.")
_REPEATS = flags.DEFINE_integer("repeats", 2, "Timed runs per phase after the compiling one.")
_TOP = flags.DEFINE_integer("top", 25, "Ops listed per phase.")
_OUT = flags.DEFINE_string("out", None, "Also write the figures as JSON to this file.")
flags.mark_flags_as_required(["config", "prompt_len"])

PHASES = {"sample": "generate_padded", "score": "score_rollout", "train": "train_step"}


def _dump_dir() -> str:
    """XLA writes each compiled module's optimized HLO here (set before JAX starts)."""
    path = tempfile.mkdtemp(prefix="profile_step_hlo_")
    modules = "|".join(PHASES.values())
    os.environ["XLA_FLAGS"] = " ".join(
        [
            os.environ.get("XLA_FLAGS", ""),
            f"--xla_dump_to={path}",
            "--xla_dump_hlo_as_text",
            f"--xla_dump_hlo_module_re=.*({modules}).*",
        ]
    )
    return path


def build(config, prompt_len: int, prompt_fill: float):
    """The policy, train state, step, scorer, sampler inputs and a train batch."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from rlvr_jax.config import ExperimentConfig
    from rlvr_jax.models import load_decoder_config, resolve_checkpoint
    from rlvr_jax.optim import make_optimizer, make_schedule
    from rlvr_jax.parallel import make_mesh
    from rlvr_jax.policy import Policy
    from rlvr_jax.rl.train_state import init_train_state
    from rlvr_jax.rl.train_step import SAMPLER_LOGPROBS, make_rollout_scorer, make_train_step
    from rlvr_jax.run_setup import decoder_for

    exp = ExperimentConfig.from_config_dict(config)
    if exp.rl.algorithm != "grpo":
        raise app.UsageError(f"rl.algorithm={exp.rl.algorithm!r}: this script runs GRPO's step")
    if not 0 < prompt_fill <= 1:
        raise app.UsageError(f"--prompt_fill must be in (0, 1], got {prompt_fill}")
    mesh = make_mesh(exp.mesh)
    cfg = load_decoder_config(resolve_checkpoint(exp.model.checkpoint, exp.model.cache_dir or None))
    model = decoder_for(exp, cfg, mesh)
    dummy = jnp.zeros((1, 4), jnp.int32)
    params = model.init(jax.random.key(exp.seed), dummy, dummy, dummy)["params"]
    dtype = jnp.dtype(exp.model.dtype)
    params = jax.tree.map(lambda x: x.astype(dtype), params)
    policy = Policy.create(model, params, exp.rl.trainable, exp.lora, mesh, exp.rl.beta > 0)
    optimizer, schedule = make_optimizer(exp.optim), make_schedule(exp.optim)
    state = init_train_state(
        policy.init_trainable(jax.random.key(1)), optimizer, jax.random.key(2), mesh
    )
    step = make_train_step(
        policy, exp.loss_config(), exp.train_step_config(), optimizer, schedule, state
    )
    scorer = make_rollout_scorer(policy, exp.loss_config(), exp.train_step_config(), state)

    rng = np.random.default_rng(exp.seed)
    B, G = exp.rl.prompts_per_step, exp.sampling.num_samples
    P, L = prompt_len, exp.sampling.max_new_tokens
    real = max(1, round(prompt_fill * P))
    prompts = [list(rng.integers(3, cfg.vocab_size, real)) for _ in range(B)]
    prompt_mask = np.zeros((B, P), np.int32)
    prompt_mask[:, P - real :] = 1
    prompt_ids = rng.integers(3, cfg.vocab_size, (B, P)) * prompt_mask
    completion_ids = rng.integers(3, cfg.vocab_size, (B * G, L))
    batch = {
        "prompt_ids": np.repeat(prompt_ids, G, axis=0),
        "prompt_mask": np.repeat(prompt_mask, G, axis=0),
        "completion_ids": completion_ids,
        "completion_mask": np.ones((B * G, L), np.int32),
        SAMPLER_LOGPROBS: np.zeros((B * G, L), np.float32),
        "advantages": rng.normal(size=B * G).astype(np.float32),
    }
    batch = {k: jnp.asarray(v) for k, v in batch.items()}
    return exp, cfg, policy, state, step, scorer, prompts, batch


def main(argv):
    del argv
    unknown = sorted(set(_PHASES.value) - set(PHASES))
    if unknown:
        raise app.UsageError(f"--phases: unknown {unknown}; choose from {sorted(PHASES)}")
    dump = _dump_dir()
    import jax

    from rlvr_jax import op_profile
    from rlvr_jax.flops import matmul_peak_flops
    from rlvr_jax.sampling import SpecialTokens, generate

    exp, cfg, policy, state, step, scorer, prompts, batch = build(
        _CONFIG.value, _PROMPT_LEN.value, _PROMPT_FILL.value
    )
    # A stop id the random model is as unlikely to draw as any other; pad 0.
    tokens = SpecialTokens(stop_token_ids=(cfg.vocab_size - 1,), pad_token_id=0)
    holder = {"state": state, "batch": batch, "draws": 0}
    step_cfg = exp.train_step_config()
    scores = not (
        policy.reference is None and step_cfg.num_iterations == 1 and step_cfg.off_policy is None
    )

    def run_sample():
        variables = policy.live_variables(holder["state"].trainable)
        holder["draws"] += 1
        key = jax.random.key(holder["draws"])
        return generate(policy.model, variables, prompts, key, exp.sampling, tokens, policy.mesh)

    def run_score():
        return scorer(holder["state"], batch)

    def run_train():
        holder["state"], metrics = step(holder["state"], holder["batch"])  # state donated
        return metrics

    runners = {"sample": run_sample, "score": run_score, "train": run_train}
    peak = matmul_peak_flops()
    print(f"fp32 matmul peak (best [2048, 2048] product): {peak / 1e9:.0f} GFLOP/s")
    results = {
        "rows": exp.train_rows,
        "prompt_len": _PROMPT_LEN.value,
        "completion_len": exp.sampling.max_new_tokens,
        "remat": exp.rl.remat,
        "num_microbatches": exp.rl.num_microbatches,
        "peak_gflops": peak / 1e9,
    }
    for phase in _PHASES.value:
        if phase == "score" and not scores:
            print("score: nothing to score (rl.beta = 0, rl.num_iterations = 1, no correction)")
            continue
        if phase == "train" and scores:  # the step reads the scorer's fields
            holder["batch"] = scorer(holder["state"], batch)
        results[phase] = profile_phase(phase, runners[phase], dump, op_profile, peak)
    if _OUT.value:
        with open(_OUT.value, "w") as f:
            json.dump(results, f, indent=1)


def profile_phase(phase: str, run, dump: str, op_profile, peak: float) -> dict:
    import glob

    import jax

    t0 = time.perf_counter()
    jax.block_until_ready(run())
    first = time.perf_counter() - t0
    times = []
    for _ in range(_REPEATS.value):
        t0 = time.perf_counter()
        jax.block_until_ready(run())
        times.append(time.perf_counter() - t0)
    trace_dir = tempfile.mkdtemp(prefix=f"profile_step_{phase}_")
    with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
        t0 = time.perf_counter()
        jax.block_until_ready(run())
        traced_wall = time.perf_counter() - t0
    module = PHASES[phase]
    texts = sorted(glob.glob(f"{dump}/*jit_{module}*after_optimizations.txt"))
    if not texts:
        raise RuntimeError(f"XLA dumped no optimized HLO for {module} under {dump}")
    hlo_ops = op_profile.parse_hlo(pathlib.Path(texts[-1]).read_text())
    ops = op_profile.op_table(op_profile.trace_events(trace_dir), hlo_ops)
    stats = op_profile.summary(ops, traced_wall)
    steady = min(times) if times else traced_wall
    print(
        f"\n== {phase} ({module}): first run {first:.2f} s, steady {steady:.2f} s "
        f"(traced run {traced_wall:.2f} s)"
    )
    print(
        f"   matmuls {stats['matmul_s']:.2f} s for {stats['matmul_tflop']:.3f} TFLOP: "
        f"{stats['matmul_gflops_per_s']:.0f} GFLOP/s "
        f"({stats['matmul_gflops_per_s'] * 1e9 / peak:.0%} of peak); other ops "
        f"{stats['other_s']:.2f} s; traced op time / wall {stats['coverage']:.2f}"
    )
    print(f"   {'seconds':>8} {'calls':>6} {'GFLOP/s':>8}  op: dots")
    for op in ops[: _TOP.value]:
        rate = f"{op.gflops_per_second:8.0f}" if op.flops_per_call else f"{'':8}"
        print(f"   {op.seconds:8.2f} {op.calls:6d} {rate}  {op.name}: {'; '.join(op.dots)[:90]}")
    return {
        "first_s": first,
        "steady_s": steady,
        "times_s": times,
        **stats,
        "ops": [
            {
                "name": op.name,
                "seconds": op.seconds,
                "calls": op.calls,
                "flops_per_call": op.flops_per_call,
                "dots": list(op.dots),
            }
            for op in ops[: _TOP.value]
        ],
    }


if __name__ == "__main__":
    app.run(main)
