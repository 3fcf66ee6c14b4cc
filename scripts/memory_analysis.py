"""Will the train step fit? XLA's own buffer assignment for a config's GRPO train step,
compiled and never run: no weights are loaded (the checkpoint's config.json alone).

    python scripts/memory_analysis.py --config=configs/gsm8k.py --prompt_len=256
    python scripts/memory_analysis.py --config=configs/gsm8k.py --prompt_len=256 \\
        --config.rl.num_microbatches=2 --config.sampling.max_new_tokens=512
    python scripts/memory_analysis.py --config=configs/arithmetic.py --prompt_len=64 \\
        --config.rl.remat=none

The step is `rl/train_step.py`'s, built as `scripts/train.py` builds it (the config's model,
LoRA, `rl.remat`, `rl.num_microbatches`, optimizer), lowered with ShapeDtypeStructs for the
base, the train state and a batch of `rl.prompts_per_step x sampling.num_samples` rows of
`--prompt_len` prompt slots (the sampler's prompt bucket) and `sampling.max_new_tokens`
completion slots. Printed in MB: arguments, outputs, donated aliases, XLA temporaries (the
activations kept for the backward, the gradients, whatever the recomputation holds) and
their sum. A run's peak RSS adds the process around it (weights once, the sampler's and
scorer's executables, the runtime: about 2.5 GB for SmolLM2-135M, BUILD_NOTES).
"""

from __future__ import annotations

import json

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.")
_PROMPT_LEN = flags.DEFINE_integer("prompt_len", None, "Prompt slots (the sampler's bucket).")
_OUT = flags.DEFINE_string("out", None, "Also write the figures as JSON to this file.")
flags.mark_flags_as_required(["config", "prompt_len"])

MB = 1e6


def abstract_batch(exp, prompt_len: int) -> dict:
    """The GRPO train batch the loop builds (train_batch.py + the scorer's outputs)."""
    import jax
    import jax.numpy as jnp

    from rlvr_jax.rl.train_step import IS_LOG_RATIOS, SAMPLER_LOGPROBS

    R, L = exp.train_rows, exp.sampling.max_new_tokens
    spec = jax.ShapeDtypeStruct
    batch = {
        "prompt_ids": spec((R, prompt_len), jnp.int32),
        "prompt_mask": spec((R, prompt_len), jnp.int32),
        "completion_ids": spec((R, L), jnp.int32),
        "completion_mask": spec((R, L), jnp.int32),
        SAMPLER_LOGPROBS: spec((R, L), jnp.float32),
        "advantages": spec((R,), jnp.float32),
    }
    if exp.rl.beta > 0:
        batch["ref_logprobs"] = spec((R, L), jnp.float32)
    if exp.rl.num_iterations > 1:
        batch["old_logprobs"] = spec((R, L), jnp.float32)
    if exp.rl.off_policy.enabled:
        batch[IS_LOG_RATIOS] = spec((R, L), jnp.float32)
    return batch


def analyse(config, prompt_len: int) -> dict:
    import jax
    import jax.numpy as jnp

    from rlvr_jax.compiled_memory import memory_stats
    from rlvr_jax.config import ExperimentConfig
    from rlvr_jax.models import load_decoder_config, resolve_checkpoint
    from rlvr_jax.models.layer_stack import stack_layers
    from rlvr_jax.optim import make_optimizer, make_schedule
    from rlvr_jax.parallel import make_mesh
    from rlvr_jax.policy import Policy
    from rlvr_jax.rl.train_state import init_train_state
    from rlvr_jax.rl.train_step import make_train_step
    from rlvr_jax.run_setup import decoder_for

    exp = ExperimentConfig.from_config_dict(config)
    if exp.rl.algorithm != "grpo":
        raise app.UsageError(f"rl.algorithm={exp.rl.algorithm!r}: this script lowers GRPO's step")
    mesh = make_mesh(exp.mesh)
    cfg = load_decoder_config(resolve_checkpoint(exp.model.checkpoint, exp.model.cache_dir or None))
    model = decoder_for(exp, cfg, mesh)
    dummy = jnp.zeros((1, 4), jnp.int32)
    dtype = jnp.dtype(exp.model.dtype)
    params = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, dtype),
        jax.eval_shape(model.init, jax.random.key(0), dummy, dummy, dummy)["params"],
    )
    if model.scan_layers:  # as Policy.create stacks it
        params = jax.eval_shape(stack_layers, params)
    policy = Policy(model, params, exp.rl.trainable, exp.lora, mesh, exp.rl.beta > 0)
    optimizer, schedule = make_optimizer(exp.optim), make_schedule(exp.optim)
    state = jax.eval_shape(
        lambda key: init_train_state(policy.init_trainable(key), optimizer, key, mesh),
        jax.random.key(0),
    )
    step = make_train_step(
        policy, exp.loss_config(), exp.train_step_config(), optimizer, schedule, state
    )
    compiled = step.func.lower(policy.frozen, state, abstract_batch(exp, prompt_len)).compile()
    stats = memory_stats(compiled)
    return {
        "rows": exp.train_rows,
        "prompt_len": prompt_len,
        "completion_len": exp.sampling.max_new_tokens,
        "remat": exp.rl.remat,
        "num_microbatches": exp.rl.num_microbatches,
        "scan_layers": policy.for_training(exp.rl.remat).model.scan_layers,
        "bytes": stats,
    }


def main(argv):
    del argv
    result = analyse(_CONFIG.value, _PROMPT_LEN.value)
    print(
        f"train step, {result['rows']} rows x {result['prompt_len']} prompt x "
        f"{result['completion_len']} completion slots, rl.remat={result['remat']}, "
        f"rl.num_microbatches={result['num_microbatches']}, "
        f"scanned layers={result['scan_layers']}"
    )
    if result["bytes"] is None:
        print("this backend reports no memory analysis")
    else:
        for key, value in result["bytes"].items():
            print(f"{key:>10} {value / MB:10.0f} MB")
    if _OUT.value:
        with open(_OUT.value, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    app.run(main)
