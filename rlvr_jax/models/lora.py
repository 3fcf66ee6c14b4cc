"""LoRA adapters as a separate parameter tree, and merging them into the base for export.

The LoRA tree mirrors the module paths of the params tree (see `decoder.py`), with one
``{a [in, r], b [r, out]}`` pair per targeted projection:

    {'layers_0': {'attn': {'q_proj': {'a': [D, r], 'b': [r, N*H]}, ...}, 'mlp': {...}}, ...}

and the decoder reads it from the ``lora`` variable collection:

    y = x @ W + s * (x @ a) @ b,    s = alpha / r  (LoRA)   or   alpha / sqrt(r)  (rsLoRA)

Initialization (Hu et al., 2021): ``b = 0`` so the adapted model starts exactly at the base;
``a ~ N(0, 1 / (3 * in))``, the variance of PEFT's ``kaiming_uniform_(a=sqrt(5))``
(uniform on ``[-1/sqrt(in), 1/sqrt(in)]``), so learning rates carry over from PEFT. Both
factors are float32 whatever the base dtype (the decoder casts them to the activations').

Targets are named by the short names of ``LORA_TARGETS`` (``q k v o gate up down``); every
layer's projection of that name is adapted.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp

from rlvr_jax.models.quantization import QuantizedKernel

PyTree = Any

# Short target name -> the projection module name it selects in every layer.
LORA_TARGETS: dict[str, str] = {
    "q": "q_proj",
    "k": "k_proj",
    "v": "v_proj",
    "o": "o_proj",
    "gate": "gate_proj",
    "up": "up_proj",
    "down": "down_proj",
}


@dataclasses.dataclass(frozen=True)
class LoraConfig:
    """LoRA hyperparameters; every field is a config key under ``lora``."""

    rank: int  # r, the inner dimension of a [in, r] @ b [r, out]
    alpha: float  # scale numerator: s = alpha / r, or alpha / sqrt(r) with rslora
    targets: tuple[str, ...]  # short names from LORA_TARGETS, e.g. ('q', 'k', 'v', 'o')
    rslora: bool  # rank-stabilized scaling alpha / sqrt(r) (Kalajdzievski, 2023)

    def __post_init__(self):
        if self.rank < 1:
            raise ValueError(f"lora.rank must be >= 1, got {self.rank}")
        if not self.alpha > 0:
            raise ValueError(f"lora.alpha must be > 0, got {self.alpha}")
        if not self.targets:
            raise ValueError(f"lora.targets is empty; choose from {list(LORA_TARGETS)}")
        unknown = [t for t in self.targets if t not in LORA_TARGETS]
        if unknown:
            raise ValueError(
                f"lora.targets: unknown target(s) {unknown}; choose from {list(LORA_TARGETS)}"
            )
        if len(set(self.targets)) != len(self.targets):
            raise ValueError(f"lora.targets has duplicates: {list(self.targets)}")


def lora_scale(cfg: LoraConfig) -> float:
    """``alpha / sqrt(r)`` with rsLoRA, else ``alpha / r``; pass it as ``Decoder(lora_scale=)``."""
    return cfg.alpha / (math.sqrt(cfg.rank) if cfg.rslora else cfg.rank)


def _key_name(key: Any) -> str:
    return str(getattr(key, "key", key))


def lora_target_paths(params: PyTree, targets: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Module paths (e.g. ``('layers_0', 'attn', 'q_proj')``) of the targeted kernels, sorted.

    ``params`` may hold arrays, ``jax.ShapeDtypeStruct``s or quantized kernels.
    """
    modules = {LORA_TARGETS[t] for t in targets}
    paths = []
    kernels = jax.tree_util.tree_leaves_with_path(
        params, is_leaf=lambda x: isinstance(x, QuantizedKernel)
    )
    for path, _ in kernels:
        names = tuple(_key_name(k) for k in path)
        if len(names) >= 2 and names[-1] == "kernel" and names[-2] in modules:
            paths.append(names[:-1])
    if not paths:
        raise ValueError(
            f"lora.targets {list(targets)} match no kernel in the params tree "
            f"(looked for modules named {sorted(modules)})"
        )
    return sorted(paths)


def _get(tree: PyTree, path: tuple[str, ...]) -> PyTree:
    for name in path:
        tree = tree[name]
    return tree


def _set(tree: dict, path: tuple[str, ...], value: Any) -> None:
    for name in path[:-1]:
        tree = tree.setdefault(name, {})
    tree[path[-1]] = value


def init_lora(params: PyTree, cfg: LoraConfig, rng: jax.Array) -> PyTree:
    """A fresh LoRA tree for ``params``: ``a ~ N(0, 1 / (3 in))``, ``b = 0``, float32.

    Only the shapes of ``params`` are read (abstract params work, e.g. under ``jit``).
    """
    paths = lora_target_paths(params, cfg.targets)
    rngs = jax.random.split(rng, len(paths))
    lora: dict = {}
    for path, key in zip(paths, rngs, strict=True):
        d_in, d_out = _get(params, path)["kernel"].shape
        std = 1.0 / math.sqrt(3.0 * d_in)
        _set(
            lora,
            path,
            {
                "a": std * jax.random.normal(key, (d_in, cfg.rank), jnp.float32),
                "b": jnp.zeros((cfg.rank, d_out), jnp.float32),
            },
        )
    return lora


def merge_lora(params: PyTree, lora: PyTree, scale: float) -> PyTree:
    """The base with every adapter folded in: ``W + scale * a @ b`` (float32 math, W's dtype).

    For export (the result is a plain params tree, no ``lora`` collection needed); the
    input trees are not modified.
    """

    def merge(node: Any, adapter: Any, where: tuple[str, ...]) -> Any:
        if not isinstance(adapter, dict):
            raise ValueError(f"LoRA tree entry {'/'.join(where)} is not a dict")
        if set(adapter) == {"a", "b"}:
            if not isinstance(node, dict) or "kernel" not in node:
                raise ValueError(f"LoRA adapter {'/'.join(where)} has no kernel in the params")
            kernel = node["kernel"]
            delta = scale * (adapter["a"].astype(jnp.float32) @ adapter["b"].astype(jnp.float32))
            if delta.shape != kernel.shape:
                raise ValueError(
                    f"LoRA adapter {'/'.join(where)}: a @ b is {delta.shape}, "
                    f"kernel is {kernel.shape}"
                )
            return {**node, "kernel": (kernel.astype(jnp.float32) + delta).astype(kernel.dtype)}
        out = dict(node)
        for name, sub in adapter.items():
            if name not in node:
                raise ValueError(f"LoRA path {'/'.join((*where, name))} is not in the params")
            out[name] = merge(node[name], sub, (*where, name))
        return out

    return merge(params, lora, ())
