"""Gradient accumulation over micro-batches whose losses are *contributions* to one sum.

The losses in ``losses.py`` divide by a normalizer computed on the full batch, so the
full-batch loss, its gradient and the metric sums are plain sums over micro-batches, for
every aggregation. Accumulation therefore *adds*; it never averages.

Split (M micro-batches of a batch of R rows): runs of ``run`` consecutive rows stay
together, and run j goes to micro-batch ``j % M``, i.e.
``x.reshape(R // (run M), M, run, ...).swapaxes(0, 1)``. Strided rather than contiguous on
purpose: when the rows are sharded over n devices in contiguous blocks, every device then
holds the same share of every micro-batch, so the split moves no data and no device
idles. Any split gives the same sums. ``microbatch_layout`` picks the run: a prompt's G
samples when the prompts divide evenly (each prompt is then run once per step, not once
per micro-batch: its prefill is shared by all its rows), else single rows.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

PyTree = Any


@dataclasses.dataclass(frozen=True)
class MicrobatchLayout:
    """How a batch of rows in prompt groups (G consecutive rows per prompt) is split."""

    num_microbatches: int  # M
    run: int  # consecutive rows a split keeps in one micro-batch
    rows_per_prompt: int  # consecutive rows of a micro-batch that share a prompt

    def map(self, fn: Callable[[PyTree], PyTree], batch: PyTree) -> PyTree:
        """`fn` over the micro-batches one at a time (`lax.map`), outputs merged back to
        [R, ...] rows: a forward-only pass whose peak memory is one micro-batch's."""
        outs_MR = jax.lax.map(fn, split_microbatches(batch, self.num_microbatches, self.run))
        return jax.tree.map(lambda x: merge_microbatches(x, self.run), outs_MR)


def microbatch_layout(
    rows: int, group_size: int, num_microbatches: int, shards: int = 1
) -> MicrobatchLayout:
    """The split of `rows` rows (runs of `group_size` share a prompt) into M micro-batches
    on `shards` devices (contiguous row blocks).

    Whole prompts when every device's prompts divide into the M micro-batches: each prompt
    then runs once per step and its G rows share it. Otherwise single rows, strided: G / M
    rows of a prompt per micro-batch when M divides G, else no sharing is assumed.
    """
    G, M = group_size, num_microbatches
    if rows % (G * shards) == 0 and (rows // (G * shards)) % M == 0:
        return MicrobatchLayout(M, G, G)
    return MicrobatchLayout(M, 1, G // M if G % M == 0 else 1)


def split_microbatches(batch: PyTree, num_microbatches: int, run: int = 1) -> PyTree:
    """Every leaf [R, ...] -> [M, R // M, ...]: run j of `run` consecutive rows goes to
    micro-batch j % M (run 1: micro-batch m holds rows m, m + M, m + 2M, ...)."""
    M = num_microbatches

    def split(x_R: jax.Array) -> jax.Array:
        R, rest = x_R.shape[0], x_R.shape[1:]
        if R % (M * run):
            raise ValueError(
                f"batch of {R} rows is not divisible into {M} micro-batches of runs of {run}"
            )
        x = jnp.swapaxes(x_R.reshape(R // (M * run), M, run, *rest), 0, 1)
        return x.reshape(M, R // M, *rest)

    return jax.tree.map(split, batch)


def merge_microbatches(x_MR: jax.Array, run: int = 1) -> jax.Array:
    """Inverse of ``split_microbatches`` for one leaf: [M, R // M, ...] -> [R, ...]."""
    M, rows, rest = x_MR.shape[0], x_MR.shape[1], x_MR.shape[2:]
    x = jnp.swapaxes(x_MR.reshape(M, rows // run, run, *rest), 0, 1)
    return x.reshape(M * rows, *rest)


def accumulate_gradients(
    loss_fn: Callable[[PyTree, PyTree], tuple[jax.Array, PyTree]],
    params: PyTree,
    batch: PyTree,
    num_microbatches: int,
    run: int = 1,
) -> tuple[jax.Array, PyTree, PyTree]:
    """Sums ``value_and_grad(loss_fn, has_aux=True)`` over micro-batches with ``lax.scan``.

    ``loss_fn(params, microbatch) -> (loss_contribution, aux_sums)``; every leaf of ``batch``
    has the leading row axis R (bind global values such as the normalizer with a closure).
    Returns ``(loss, grads, aux_sums)``, each summed over micro-batches; accumulation is in
    float32 (at least) and the result is cast back to each leaf's dtype. ``run``: rows kept
    together by the split (``split_microbatches``).
    """
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    if num_microbatches == 1:
        (loss, aux), grads = grad_fn(params, batch)
        return loss, grads, aux
    batch_MR = split_microbatches(batch, num_microbatches, run)
    out_shapes = jax.eval_shape(grad_fn, params, jax.tree.map(lambda x: x[0], batch_MR))

    def acc_dtype(s: jax.ShapeDtypeStruct) -> jnp.dtype:
        if jnp.issubdtype(s.dtype, jnp.floating):
            return jnp.promote_types(s.dtype, jnp.float32)
        return s.dtype

    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, acc_dtype(s)), out_shapes)

    def body(carry: PyTree, microbatch: PyTree) -> tuple[PyTree, None]:
        out = grad_fn(params, microbatch)
        return jax.tree.map(lambda c, o: c + o.astype(c.dtype), carry, out), None

    summed, _ = jax.lax.scan(body, zeros, batch_MR)
    (loss, aux), grads = jax.tree.map(lambda x, s: x.astype(s.dtype), summed, out_shapes)
    return loss, grads, aux
