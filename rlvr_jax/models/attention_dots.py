"""Attention's two batched dots, with a backward that transposes the small operand.

Scores `S = Q K^T` and outputs `O = P V`, batched over leading axes, with Q, O [.., M, H]
(M queries), K, V [.., N, H] (N keys) and S, P [.., M, N]. Autodiff forms the key and
value gradients as `dS^T Q` and `P^T dO`: dots that contract M, the major axis of the
large [M, N] operand, which XLA:CPU's matmul kernels want minor on the left, so XLA
copies dS and P transposed first ([8, 3, 384, 256] per layer and query chunk in the
GSM8K train step; the largest of the attention's layout copies). Here the small [M, H]
operands are transposed instead (lora_matmul.py does the same for LoRA):

    dK^T = Q^T dS        [.., H, M] @ [.., M, N]
    dV^T = dO^T P        [.., H, M] @ [.., M, N]

and the [.., H, N] results are transposed back. Same values as autodiff (tested); only
the operand layouts differ.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def _dot(a, b, contract_a: int, contract_b: int):
    """float32 `dot_general` of a [.., x, y] and b [.., z, w] batched over the leading axes,
    contracting axis -2 or -1 of each (`contract_*`)."""
    batch = tuple(range(a.ndim - 2))
    dims = (((a.ndim + contract_a,), (b.ndim + contract_b,)), (batch, batch))
    return jax.lax.dot_general(a, b, dims, preferred_element_type=jnp.float32)


def scores(q: jax.Array, k: jax.Array) -> jax.Array:
    """`q @ k^T` in float32: q [.., M, H], k [.., N, H] -> [.., M, N]."""
    return _batched_dot(q, k, True)


def weighted_values(p: jax.Array, v: jax.Array) -> jax.Array:
    """`p @ v` in float32: p [.., M, N], v [.., N, H] -> [.., M, H]."""
    return _batched_dot(p, v, False)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _batched_dot(a, b, b_transposed: bool):
    """`a @ b^T` (b_transposed) or `a @ b`."""
    return _dot(a, b, -1, -1 if b_transposed else -2)


def _forward(a, b, b_transposed):
    return _batched_dot(a, b, b_transposed), (a, b)


def _backward(b_transposed, residuals, g):
    a, b = residuals
    g = g.astype(a.dtype)
    da = _dot(g, b, -1, -2 if b_transposed else -1)
    # The [.., M, *] operands contract M: the small one of `a` (q) or `g` (dO) goes first.
    db_T = _dot(a, g, -2, -2) if b_transposed else _dot(g, a, -2, -2)
    return da.astype(a.dtype), jnp.swapaxes(db_T, -1, -2).astype(b.dtype)


_batched_dot.defvjp(_forward, _backward)
