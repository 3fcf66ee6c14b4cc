"""The hand-written LoRA backward equals autodiff of `scale * (x @ a) @ b`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlvr_jax.models.lora_matmul import lora_delta


@pytest.mark.parametrize("lead", [(5,), (2, 3)])
def test_values_and_gradients_match_autodiff(lead):
    r = np.random.default_rng(0)
    x = jnp.asarray(r.normal(size=(*lead, 7)), jnp.float32)
    a = jnp.asarray(r.normal(size=(7, 3)), jnp.float32)
    b = jnp.asarray(r.normal(size=(3, 4)), jnp.float32)
    w = jnp.asarray(r.normal(size=(*lead, 4)), jnp.float32)  # a non-uniform cotangent

    def ours(x, a, b):
        return jnp.sum(jnp.sin(lora_delta(x, a, b, 0.7)) * w)

    def reference(x, a, b):
        return jnp.sum(jnp.sin(0.7 * ((x @ a) @ b)) * w)

    np.testing.assert_allclose(ours(x, a, b), reference(x, a, b), rtol=1e-6)
    got = jax.grad(ours, argnums=(0, 1, 2))(x, a, b)
    want = jax.grad(reference, argnums=(0, 1, 2))(x, a, b)
    for g, e in zip(got, want, strict=True):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


def test_jit_and_bfloat16_keep_dtypes():
    x = jnp.ones((4, 6), jnp.bfloat16)
    a = jnp.full((6, 2), 0.1, jnp.bfloat16)
    b = jnp.full((2, 3), 0.2, jnp.bfloat16)
    grads = jax.jit(jax.grad(lambda x, a, b: lora_delta(x, a, b, 2.0).sum(), argnums=(0, 1, 2)))(
        x, a, b
    )
    assert [g.dtype for g in grads] == [jnp.bfloat16] * 3
    np.testing.assert_allclose(np.asarray(grads[2], np.float32), 2.0 * 0.6 * 4, rtol=1e-2)
