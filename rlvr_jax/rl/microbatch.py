"""Gradient accumulation over micro-batches whose losses are *contributions* to one sum.

The losses in ``losses.py`` divide by a normalizer computed on the full batch, so the
full-batch loss, its gradient and the metric sums are plain sums over micro-batches, for
every aggregation. Accumulation therefore *adds*; it never averages.

Split (M micro-batches of a batch of R rows; R divisible by M): row b goes to micro-batch
``b % M``, i.e. ``x.reshape(R // M, M, ...).swapaxes(0, 1)``. Strided rather than contiguous
on purpose: when the rows are sharded over n devices in contiguous blocks, every device
then holds ``R / (n M)`` rows of every micro-batch (take ``R / M`` divisible by n), so the
split moves no data and no device idles. Any split gives the same sums.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

PyTree = Any


def split_microbatches(batch: PyTree, num_microbatches: int) -> PyTree:
    """Every leaf [R, ...] -> [M, R // M, ...]; micro-batch m holds rows m, m + M, m + 2M, ..."""

    def split(x_R: jax.Array) -> jax.Array:
        if x_R.shape[0] % num_microbatches:
            raise ValueError(
                f"batch of {x_R.shape[0]} rows is not divisible into "
                f"{num_microbatches} micro-batches"
            )
        x = x_R.reshape(x_R.shape[0] // num_microbatches, num_microbatches, *x_R.shape[1:])
        return jnp.swapaxes(x, 0, 1)

    return jax.tree.map(split, batch)


def merge_microbatches(x_MR: jax.Array) -> jax.Array:
    """Inverse of ``split_microbatches`` for one leaf: [M, R // M, ...] -> [R, ...]."""
    return jnp.swapaxes(x_MR, 0, 1).reshape(-1, *x_MR.shape[2:])


def accumulate_gradients(
    loss_fn: Callable[[PyTree, PyTree], tuple[jax.Array, PyTree]],
    params: PyTree,
    batch: PyTree,
    num_microbatches: int,
) -> tuple[jax.Array, PyTree, PyTree]:
    """Sums ``value_and_grad(loss_fn, has_aux=True)`` over micro-batches with ``lax.scan``.

    ``loss_fn(params, microbatch) -> (loss_contribution, aux_sums)``; every leaf of ``batch``
    has the leading row axis R (bind global values such as the normalizer with a closure).
    Returns ``(loss, grads, aux_sums)``, each summed over micro-batches; accumulation is in
    float32 (at least) and the result is cast back to each leaf's dtype.
    """
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    if num_microbatches == 1:
        (loss, aux), grads = grad_fn(params, batch)
        return loss, grads, aux
    batch_MR = split_microbatches(batch, num_microbatches)
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
