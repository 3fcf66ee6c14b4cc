"""FSDP shown, not assumed: per-device memory of the full fine-tuning train step, fsdp=8 vs data=8.

    python scripts/bench_fsdp.py                                 # SmolLM2-360M shape, 32 layers
    python scripts/bench_fsdp.py --layers 8 --out runs/bench_fsdp.json
    python scripts/bench_fsdp.py --layers 1 --rows 8             # seconds: a smoke run

The model has SmolLM2-360M's dimensions (V 49152, D 960, F 2560, 15 heads, 5 kv heads, head
dim 64, tied embeddings) with random weights that are never materialized: the params are
`jax.eval_shape(model.init, ...)`, the `Policy` and the `TrainState` (AdamW, constant
schedule) are built from ShapeDtypeStructs, and the train step of `rl/train_step.py`
(full fine-tuning, mu = 1, beta = 0) is only lowered and compiled, once per mesh, on 8 fake
CPU devices (`--xla_force_host_platform_device_count=8`, set below before JAX is imported):

    data=8 fsdp=1   params and Adam moments replicated on every device
    data=1 fsdp=8   the large matrices (and their moments) sharded over the 8 devices

Reported per device, in MiB: params + optimizer state from the state's shardings
(`train_state_shardings`: the sum over leaves of the shard shape's size x itemsize), the
compiled program's `memory_analysis()` (arguments, outputs, temporaries, donated aliases
and their sum arguments + outputs - aliases + temporaries), the collectives in the
compiled HLO, and the compile time; the whole (unsharded) model for reference, and the
ratio fsdp / data of each row. Printed as a markdown table; `--out` also writes JSON.

Reading it: the state rows are what the sharding rules promise (`parallel.py`); the XLA rows
are what the compiled program allocates. Temporaries hold the gradients, the activations
kept for the backward pass and whatever XLA gathers; the collectives row (count and MiB of
results per kind) tells which: ZeRO-3 all-gathers about the whole model's weights per step,
while gathering activations instead means each device computes on every row of the batch.
"""

from __future__ import annotations

import os

os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=8"]
).strip()
os.environ["JAX_PLATFORMS"] = "cpu"

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

from rlvr_jax.compiled_memory import memory_stats  # noqa: E402
from rlvr_jax.models import Decoder, DecoderConfig, RopeConfig  # noqa: E402
from rlvr_jax.models.lora import LoraConfig  # noqa: E402
from rlvr_jax.optim import OptimConfig, make_optimizer, make_schedule  # noqa: E402
from rlvr_jax.parallel import MeshConfig, batch_sharding, make_mesh  # noqa: E402
from rlvr_jax.policy import Policy  # noqa: E402
from rlvr_jax.rl.losses import LossConfig  # noqa: E402
from rlvr_jax.rl.train_state import TrainState, train_state_shardings  # noqa: E402
from rlvr_jax.rl.train_step import TrainStepConfig, make_train_step  # noqa: E402

PyTree = Any
NUM_DEVICES = 8
MIB = 2**20
MESHES = {"data=8": MeshConfig(data=8, fsdp=1), "fsdp=8": MeshConfig(data=1, fsdp=8)}
COLLECTIVES = ("all-gather", "reduce-scatter", "all-reduce", "all-to-all", "collective-permute")
DTYPE_BYTES = {"pred": 1, "s8": 1, "u8": 1, "bf16": 2, "f16": 2, "s16": 2, "u16": 2, "f64": 8}
# SmolLM2-360M (HuggingFaceTB/SmolLM2-360M config.json), all but the layer count.
SMOLLM2_360M = dict(
    model_type="llama",
    vocab_size=49152,
    hidden_size=960,
    intermediate_size=2560,
    num_heads=15,
    num_kv_heads=5,
    head_dim=64,
    rms_norm_eps=1e-5,
    rope=RopeConfig(theta=100000.0),
    tie_embeddings=True,
    qkv_bias=False,
)
UNUSED_LORA = LoraConfig(rank=1, alpha=1.0, targets=("q",), rslora=False)  # full mode: unread


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--layers", type=int, default=32, help="decoder layers (SmolLM2-360M: 32)")
    p.add_argument("--rows", type=int, default=16, help="R, batch rows (a multiple of 8)")
    p.add_argument("--prompt_len", type=int, default=64, help="P, prompt slots per row")
    p.add_argument("--completion_len", type=int, default=32, help="L, completion tokens per row")
    p.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    p.add_argument(
        "--no_row_sharding",
        action="store_true",
        help="leave activation placement to XLA (the decoder without its row_sharding)",
    )
    args = p.parse_args(argv)
    if args.rows % NUM_DEVICES:
        p.error(f"--rows must be a multiple of {NUM_DEVICES} (the batch is sharded over all)")
    return args


@dataclasses.dataclass(frozen=True)
class Setup:
    """What both meshes compile: the model, its abstract state and batch, the optimizer."""

    model: Decoder
    configs: tuple[LossConfig, TrainStepConfig, OptimConfig]
    optimizer: optax.GradientTransformation
    state: TrainState  # ShapeDtypeStructs
    batch: dict[str, jax.ShapeDtypeStruct]


def make_setup(args: argparse.Namespace) -> Setup:
    model, params = model_and_params(args.layers)
    configs = step_configs(args.completion_len)
    optimizer = make_optimizer(configs[2])
    state = abstract_state(params, optimizer)
    batch = abstract_batch(args.rows, args.prompt_len, args.completion_len)
    return Setup(model, configs, optimizer, state, batch)


def model_and_params(num_layers: int) -> tuple[Decoder, PyTree]:
    """The decoder at SmolLM2-360M's dims and its abstract params (ShapeDtypeStructs)."""
    cfg = DecoderConfig(**SMOLLM2_360M, num_layers=num_layers, layer_windows=(None,) * num_layers)
    model = Decoder(cfg)
    dummy = jnp.zeros((1, 4), jnp.int32)
    return model, jax.eval_shape(model.init, jax.random.key(0), dummy, dummy, dummy)["params"]


def step_configs(completion_len: int) -> tuple[LossConfig, TrainStepConfig, OptimConfig]:
    loss_cfg = LossConfig(
        loss_type="grpo",
        eps_low=0.2,
        eps_high=0.28,
        dual_clip=None,
        beta=0.0,
        kl_estimator="k3",
        max_completion_len=completion_len,
    )
    step_cfg = TrainStepConfig(num_microbatches=1, num_iterations=1, group_size=1)
    optim_cfg = OptimConfig(
        learning_rate=1e-5,
        schedule="constant",
        warmup_steps=0,
        total_steps=100,
        min_lr_ratio=0.0,
        weight_decay=0.0,
        b1=0.9,
        b2=0.999,
        eps=1e-8,
        max_grad_norm=None,
    )
    return loss_cfg, step_cfg, optim_cfg


def abstract_state(params: PyTree, optimizer: optax.GradientTransformation) -> TrainState:
    """The step-0 TrainState of full fine-tuning, as ShapeDtypeStructs (see init_train_state)."""

    def init(params: PyTree) -> TrainState:
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            trainable=params,
            opt_state=optimizer.init(params),
            rng=jax.random.key_data(jax.random.key(0)),
        )

    return jax.eval_shape(init, params)


def abstract_batch(rows: int, prompt_len: int, completion_len: int) -> dict[str, Any]:
    """The train batch's keys at mu = 1, beta = 0 (no old / ref logprobs)."""
    spec = jax.ShapeDtypeStruct
    return {
        "prompt_ids": spec((rows, prompt_len), jnp.int32),
        "prompt_mask": spec((rows, prompt_len), jnp.int32),
        "completion_ids": spec((rows, completion_len), jnp.int32),
        "completion_mask": spec((rows, completion_len), jnp.int32),
        "advantages": spec((rows,), jnp.float32),
    }


def tree_bytes(tree: PyTree, shardings: PyTree | None = None) -> int:
    """Bytes of `tree`'s leaves: whole, or one device's shard of each under `shardings`."""
    leaves = jax.tree.leaves(tree)
    if shardings is None:
        shapes = [leaf.shape for leaf in leaves]
    else:
        sh_leaves = jax.tree.leaves(shardings)
        shapes = [s.shard_shape(x.shape) for x, s in zip(leaves, sh_leaves, strict=True)]
    return sum(
        math.prod(shape) * leaf.dtype.itemsize for shape, leaf in zip(shapes, leaves, strict=True)
    )


def collectives(hlo_text: str) -> dict[str, dict[str, float]]:
    """Per kind of collective in the compiled (partitioned) HLO: how many, and the MiB of
    their results summed (what an all-gather brings in: weights, or activations)."""
    out: dict[str, dict[str, float]] = {}
    for line in hlo_text.splitlines():
        match = re.search(r"= (.+?) ([a-z-]+?)(-start)?\(", line)
        if match is None or match.group(2) not in COLLECTIVES:
            continue
        result_bytes = sum(
            DTYPE_BYTES.get(dtype, 4) * math.prod(int(d) for d in dims.split(",") if d)
            for dtype, dims in re.findall(r"([a-z]+\d*)\[([\d,]*)\]", match.group(1))
        )
        entry = out.setdefault(match.group(2), {"count": 0, "mib": 0.0})
        entry["count"] += 1
        entry["mib"] += result_bytes / MIB
    return out


def measure(mesh_cfg: MeshConfig, setup: Setup, row_sharding: bool) -> dict:
    """Lowers and compiles the train step on one mesh; its per-device bytes and compile time."""
    mesh = make_mesh(mesh_cfg)
    loss_cfg, step_cfg, optim_cfg = setup.configs
    params = setup.state.trainable  # abstract: Policy.create would place arrays
    model = setup.model.clone(row_sharding=batch_sharding(mesh) if row_sharding else None)
    policy = Policy(model, params, "full", UNUSED_LORA, mesh, has_reference=False)
    schedule = make_schedule(optim_cfg)
    step = make_train_step(policy, loss_cfg, step_cfg, setup.optimizer, schedule, setup.state)
    start = time.perf_counter()
    compiled = step.func.lower(None, setup.state, setup.batch).compile()
    compile_s = time.perf_counter() - start
    shardings = train_state_shardings(setup.state, mesh)
    params_bytes = tree_bytes(setup.state.trainable, shardings.trainable)
    opt_state_bytes = tree_bytes(setup.state.opt_state, shardings.opt_state)
    return {
        "mesh": dict(mesh.shape),
        "params_bytes": params_bytes,
        "opt_state_bytes": opt_state_bytes,
        "params_opt_bytes": params_bytes + opt_state_bytes,
        "memory_analysis": memory_stats(compiled),
        "collectives": collectives(compiled.as_text()),
        "compile_s": compile_s,
    }


def run(args: argparse.Namespace, command: str) -> dict:
    assert jax.device_count() == NUM_DEVICES, jax.devices()
    setup = make_setup(args)
    params, opt_state = tree_bytes(setup.state.trainable), tree_bytes(setup.state.opt_state)
    return {
        "command": command,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, 8 fake JAX devices",
        "jax": jax.__version__,
        "shape": {
            "layers": args.layers,
            "rows": args.rows,
            "prompt_len": args.prompt_len,
            "completion_len": args.completion_len,
            "num_params": sum(math.prod(x.shape) for x in jax.tree.leaves(setup.state.trainable)),
        },
        "whole_model": {
            "params_bytes": params,
            "opt_state_bytes": opt_state,
            "params_opt_bytes": params + opt_state,
        },
        "row_sharding": not args.no_row_sharding,
        "meshes": {
            name: measure(cfg, setup, not args.no_row_sharding) for name, cfg in MESHES.items()
        },
    }


def table_rows(report: dict) -> list[tuple[str, float | None, float | None, str]]:
    """(label, data=8 MiB, fsdp=8 MiB, whole-model MiB or '') per row of the table."""
    data, fsdp = report["meshes"]["data=8"], report["meshes"]["fsdp=8"]
    whole = report["whole_model"]

    def mib(r: dict, key: str) -> float | None:
        if key.startswith("xla_"):
            stats = r["memory_analysis"]
            return None if stats is None else stats[key[4:]] / MIB
        return r[key] / MIB

    labels = {
        "params_bytes": ("params (from shardings)", whole["params_bytes"]),
        "opt_state_bytes": ("optimizer state (from shardings)", whole["opt_state_bytes"]),
        "params_opt_bytes": ("**params + optimizer state**", whole["params_opt_bytes"]),
        "xla_argument": ("XLA arguments", None),
        "xla_output": ("XLA outputs", None),
        "xla_alias": ("XLA aliased (donated state)", None),
        "xla_temp": ("XLA temporaries", None),
        "xla_total": ("XLA args + outs - alias + temp", None),
    }
    return [
        (label, mib(data, key), mib(fsdp, key), "" if ref is None else f"{ref / MIB:.1f}")
        for key, (label, ref) in labels.items()
    ]


def markdown(report: dict) -> str:
    shape, meshes = report["shape"], report["meshes"]

    def num(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.1f}"

    def ratio(a: float | None, b: float | None) -> str:
        return "n/a" if a is None or b is None or a == 0 else f"{b / a:.3f}"

    lines = [
        f"`{report['command']}`, {report['date']}, {report['machine']}, jax {report['jax']}",
        "",
        f"SmolLM2-360M dims, {shape['layers']} layers ({shape['num_params'] / 1e6:.1f}M params,"
        f" fp32), full fine-tuning, AdamW; batch R={shape['rows']}, P={shape['prompt_len']},"
        f" L={shape['completion_len']}. Per device, MiB:",
        "",
        "| | data=8 | fsdp=8 | fsdp / data | whole model |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, a, b, whole in table_rows(report):
        lines.append(f"| {label} | {num(a)} | {num(b)} | {ratio(a, b)} | {whole} |")
    data, fsdp = meshes["data=8"], meshes["fsdp=8"]
    lines.append(
        f"| compile time (s) | {data['compile_s']:.1f} | {fsdp['compile_s']:.1f} |"
        f" {ratio(data['compile_s'], fsdp['compile_s'])} | |"
    )

    def coll(r: dict) -> str:
        items = r["collectives"].items()
        return ", ".join(f"{op} {c['count']}x, {c['mib']:.0f} MiB" for op, c in items) or "none"

    lines.append(f"| collectives in the HLO | {coll(data)} | {coll(fsdp)} | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    report = run(args, " ".join(["python", *(sys.argv if argv is None else [__file__, *argv])]))
    print(markdown(report))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
