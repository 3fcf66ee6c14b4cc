"""Per-layer params <-> one stacked tree, for the scanned decoder (`model.scan_layers`).

The canonical tree (loading, LoRA, export, PEFT, checkpoints of a LoRA run) names each
layer: ``layers_0/attn/q_proj/kernel [D, N*H]``, ``layers_1/...``. The scanned decoder
runs one compiled layer body under `lax.scan` over the same params stacked along a new
leading axis: ``layers/attn/q_proj/kernel [L, D, N*H]``. A quantized kernel stacks its
codes and scales the same way (its `shape` stays the per-layer float shape).

The decoder accepts either form; the policy stacks its frozen base once when it is
built, so no step copies it (a LoRA tree is small and is stacked inside the step).
"""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp

PyTree = Any
STACKED = "layers"
_LAYER_KEY = re.compile(r"^layers_(\d+)$")


def layer_keys(tree: dict) -> list[str]:
    """The per-layer keys of ``tree`` (``layers_0``, ``layers_1``, ...), in layer order."""
    keys = [k for k in tree if _LAYER_KEY.match(k)]
    return sorted(keys, key=lambda k: int(_LAYER_KEY.match(k).group(1)))


def is_stacked(tree: dict) -> bool:
    return STACKED in tree


def stack_layers(tree: dict) -> dict:
    """``tree`` with its ``layers_{i}`` subtrees replaced by one ``layers`` subtree whose
    leaves have a leading layer axis. A tree already stacked is returned as is."""
    if is_stacked(tree):
        return tree
    keys = layer_keys(tree)
    if not keys:
        raise ValueError("stack_layers: the tree has no layers_{i} entries")
    if [int(_LAYER_KEY.match(k).group(1)) for k in keys] != list(range(len(keys))):
        raise ValueError(f"stack_layers: layer keys are not 0..{len(keys) - 1}: {keys}")
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *(tree[k] for k in keys))
    rest = {k: v for k, v in tree.items() if k not in keys}
    return {**rest, STACKED: stacked}


def unstack_layers(tree: dict) -> dict:
    """The inverse of `stack_layers` (a tree with no ``layers`` entry is returned as is)."""
    if not is_stacked(tree):
        return tree
    stacked = tree[STACKED]
    num_layers = jax.tree.leaves(stacked)[0].shape[0]
    rest = {k: v for k, v in tree.items() if k != STACKED}
    for i in range(num_layers):
        rest[f"layers_{i}"] = jax.tree.map(lambda x, i=i: x[i], stacked)
    return rest


def per_layer_shapes(tree: dict) -> dict:
    """The canonical (per-layer) tree of ``tree`` as `jax.ShapeDtypeStruct`s, computing
    nothing: what `lora.init_lora` needs from a stacked base."""
    return jax.eval_shape(unstack_layers, tree)


def stack_variables(variables: dict[str, PyTree]) -> dict[str, PyTree]:
    """Flax variables with their params (and LoRA tree, if any) stacked."""
    return {
        name: stack_layers(tree) if name in ("params", "lora") else tree
        for name, tree in variables.items()
    }
