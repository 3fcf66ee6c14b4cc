"""Shared fixtures for the RL step tests: a tiny random decoder and a synthetic batch.

Dims are odd/prime except the head dim (rope needs it even) and D = 28, which the
data=2 x fsdp=4 mesh of the device-invariance test must be able to shard (D is the dim the
fsdp rules split). One layer by default: CPU compile time, not run time, dominates.
"""

from __future__ import annotations

import contextlib
import functools

import jax
import jax.numpy as jnp
import numpy as np

from rlvr_jax.models import Decoder, DecoderConfig, RopeConfig
from rlvr_jax.models.lora import LoraConfig, init_lora, lora_scale
from rlvr_jax.optim import OptimConfig
from rlvr_jax.policy import Policy
from rlvr_jax.rl.losses import LossConfig

VOCAB = 41
PROMPT_LEN = 7  # P
COMPLETION_LEN = 5  # L
ROWS = 16  # R = 4 prompts x G = 4
LORA = LoraConfig(
    rank=3, alpha=6.0, targets=("q", "k", "v", "o", "gate", "up", "down"), rslora=False
)


def tiny_config(**overrides) -> DecoderConfig:
    fields = dict(
        model_type="qwen2",
        vocab_size=VOCAB,
        hidden_size=28,
        intermediate_size=37,
        num_layers=2,
        num_heads=3,
        num_kv_heads=1,
        head_dim=8,
        rms_norm_eps=1e-6,
        rope=RopeConfig(theta=10000.0),
        layer_windows=(None, None),
        tie_embeddings=False,
        qkv_bias=True,
    )
    fields.update(overrides)
    return DecoderConfig(**fields)


@functools.cache
def tiny_model(lora_cfg: LoraConfig = LORA, seed: int = 0, num_layers: int = 1):
    """``(model, params)``: a random decoder whose Dense layers see a LoRA scale.

    The params follow the decoder's initializers (N(0, 1) embedding, N(0, 0.02) kernels,
    unit norm scales, zero biases) but are drawn with NumPy from the abstract tree: an eager
    ``model.init`` compiles dozens of tiny ops, seconds on a busy CPU. Cached: treat the
    params as read-only and copy the dicts before changing a leaf.
    """
    cfg = tiny_config(num_layers=num_layers, layer_windows=(None,) * num_layers)
    model = Decoder(cfg, lora_scale=lora_scale(lora_cfg))
    dummy = jnp.zeros((1, 4), jnp.int32)
    abstract = jax.eval_shape(model.init, jax.random.key(0), dummy, dummy, dummy)["params"]
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = str(path[-1].key)
        if name == "scale":
            return jnp.ones(leaf.shape, leaf.dtype)
        if name == "bias":
            return jnp.zeros(leaf.shape, leaf.dtype)
        std = 1.0 if name == "embedding" else 0.02
        return jnp.asarray(rng.normal(0.0, std, leaf.shape), leaf.dtype)

    return model, jax.tree_util.tree_map_with_path(draw, abstract)


def tiny_policy(mode: str, mesh, has_reference: bool, num_layers: int = 1) -> Policy:
    """The tiny model as a `Policy` on `mesh`: base = its params, LoRA shape `LORA`."""
    model, params = tiny_model(num_layers=num_layers)
    return Policy.create(model, params, mode, LORA, mesh, has_reference)


@contextlib.contextmanager
def fast_compile():
    """XLA without LLVM's expensive backend passes: CPU compiles ~2x faster.

    ``jax_disable_most_optimizations`` only lowers the backend (codegen) optimization level;
    the HLO passes, GSPMD sharding propagation and partitioning included, run as usual.
    """
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    try:
        yield
    finally:
        jax.config.update("jax_disable_most_optimizations", previous)


def nonzero_lora(params, lora_cfg: LoraConfig = LORA, seed: int = 1):
    """A LoRA tree with b != 0 too, so every factor has a gradient and changes the output."""
    lora = init_lora(params, lora_cfg, jax.random.key(seed))
    leaves, treedef = jax.tree.flatten(lora)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    leaves = [x + 0.1 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
    return jax.tree.unflatten(treedef, leaves)


def host_batch(seed: int = 0, rows: int = ROWS, group: int = 1) -> dict[str, np.ndarray]:
    """Left-padded prompts, right-padded completions of lengths 1..L, random advantages.

    ``group`` > 1: rows p*group .. p*group+group-1 share one prompt (the sampler's layout).

    ``old_logprobs`` / ``ref_logprobs`` are placeholders here (negative numbers, 0 off the
    mask); tests that need them consistent with a policy overwrite them.
    """
    rng = np.random.default_rng(seed)
    P, L = PROMPT_LEN, COMPLETION_LEN
    prompt_lens = rng.integers(1, P + 1, size=rows)
    prompt_lens[0] = P
    completion_lens = rng.integers(1, L + 1, size=rows)
    completion_lens[:2] = (1, L)
    prompt_mask = (np.arange(P)[None] >= P - prompt_lens[:, None]).astype(np.int32)
    completion_mask = (np.arange(L)[None] < completion_lens[:, None]).astype(np.int32)
    prompt_ids = np.where(prompt_mask == 1, rng.integers(1, VOCAB, size=(rows, P)), 0)
    leader = np.arange(rows) // group * group
    prompt_ids, prompt_mask = prompt_ids[leader], prompt_mask[leader]
    completion_ids = np.where(completion_mask == 1, rng.integers(1, VOCAB, size=(rows, L)), 0)
    return {
        "prompt_ids": prompt_ids.astype(np.int32),
        "prompt_mask": prompt_mask,
        "completion_ids": completion_ids.astype(np.int32),
        "completion_mask": completion_mask,
        "advantages": rng.normal(size=rows).astype(np.float32),
        "old_logprobs": np.where(completion_mask == 1, -rng.uniform(2, 5, (rows, L)), 0.0).astype(
            np.float32
        ),
        "ref_logprobs": np.where(completion_mask == 1, -rng.uniform(2, 5, (rows, L)), 0.0).astype(
            np.float32
        ),
    }


def loss_config(loss_type: str, beta: float = 0.0) -> LossConfig:
    return LossConfig(
        loss_type=loss_type,
        eps_low=0.2,
        eps_high=0.28,
        dual_clip=None,
        beta=beta,
        kl_estimator="k3",
        max_completion_len=COMPLETION_LEN + 2,  # > L on purpose (a constant, not the batch's)
    )


def optim_config(learning_rate: float = 1e-2, eps: float = 1e-8) -> OptimConfig:
    return OptimConfig(
        learning_rate=learning_rate,
        schedule="constant",
        warmup_steps=0,
        total_steps=100,
        min_lr_ratio=0.0,
        weight_decay=0.0,
        b1=0.9,
        b2=0.999,
        eps=eps,
        max_grad_norm=None,
    )
