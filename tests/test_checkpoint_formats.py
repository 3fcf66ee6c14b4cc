"""Checkpoints written before the train state had PPO's critic fields still restore."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rlvr_jax import checkpoints
from rlvr_jax.checkpoints import CheckpointConfig
from rlvr_jax.parallel import MeshConfig, make_mesh
from rlvr_jax.rl.train_state import init_train_state


def state(critic=None):
    mesh = make_mesh(MeshConfig(data=1, fsdp=1), jax.devices()[:1])
    opt = optax.adam(1e-3)
    trainable = {"w": jnp.arange(6.0).reshape(2, 3)}
    if critic is None:
        return init_train_state(trainable, opt, jax.random.key(0), mesh)
    return init_train_state(trainable, opt, jax.random.key(0), mesh, critic, opt)


def test_a_checkpoint_without_the_critic_fields_restores(tmp_path):
    manager = checkpoints.make_manager(
        tmp_path, CheckpointConfig(every_steps=1, max_to_keep=1, allow_config_changes=False)
    )
    old = state()
    # The layout before the critic existed: the four fields only.
    as_before = {"step": old.step, "trainable": old.trainable, "opt_state": old.opt_state}
    checkpoints.save(manager, 3, {**as_before, "rng": old.rng}, {"rl_step": 3})
    restored, meta = checkpoints.restore_latest(manager, state())
    assert meta["rl_step"] == 3 and restored.critic is None
    np.testing.assert_array_equal(restored.trainable["w"], old.trainable["w"])
    with pytest.raises(ValueError, match=r"holds no \['critic', 'critic_opt_state'\]"):
        checkpoints.restore_latest(manager, state(critic={"v": jnp.zeros(2)}))
