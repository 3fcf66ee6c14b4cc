"""The hand-written backwards of attention's score and value dots equal autodiff of the
plain products."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlvr_jax.models.attention_dots import scores, weighted_values


def _check(ours, reference, *args):
    np.testing.assert_allclose(ours(*args), reference(*args), rtol=1e-6)
    got = jax.grad(ours, argnums=(0, 1))(*args)
    want = jax.grad(reference, argnums=(0, 1))(*args)
    for g, e in zip(got, want, strict=True):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("lead", [(2,), (2, 3)])
def test_scores_match_autodiff(lead):
    r = np.random.default_rng(0)
    q = jnp.asarray(r.normal(size=(*lead, 5, 4)), jnp.float32)
    k = jnp.asarray(r.normal(size=(*lead, 7, 4)), jnp.float32)
    w = jnp.asarray(r.normal(size=(*lead, 5, 7)), jnp.float32)  # a non-uniform cotangent

    def ours(q, k):
        return jnp.sum(jnp.sin(scores(q, k)) * w)

    def reference(q, k):
        return jnp.sum(jnp.sin(jnp.einsum("...mh,...nh->...mn", q, k)) * w)

    _check(ours, reference, q, k)


@pytest.mark.parametrize("lead", [(2,), (2, 3)])
def test_weighted_values_match_autodiff(lead):
    r = np.random.default_rng(1)
    p = jnp.asarray(r.uniform(size=(*lead, 5, 7)), jnp.float32)
    v = jnp.asarray(r.normal(size=(*lead, 7, 4)), jnp.float32)
    w = jnp.asarray(r.normal(size=(*lead, 5, 4)), jnp.float32)

    def ours(p, v):
        return jnp.sum(jnp.sin(weighted_values(p, v)) * w)

    def reference(p, v):
        return jnp.sum(jnp.sin(p @ v) * w)

    _check(ours, reference, p, v)


def test_bfloat16_inputs_give_float32_products_and_bfloat16_gradients():
    q = jnp.full((2, 3, 4), 0.5, jnp.bfloat16)
    k = jnp.full((2, 6, 4), 0.25, jnp.bfloat16)
    assert scores(q, k).dtype == jnp.float32
    assert weighted_values(jnp.swapaxes(scores(q, k), -1, -2).astype(jnp.bfloat16), q).dtype == (
        jnp.float32
    )
    grads = jax.jit(jax.grad(lambda q, k: scores(q, k).sum(), argnums=(0, 1)))(q, k)
    assert [g.dtype for g in grads] == [jnp.bfloat16] * 2
    np.testing.assert_allclose(np.asarray(grads[1], np.float32), 3 * 0.5, rtol=1e-2)
