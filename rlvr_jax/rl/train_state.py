"""The train state ``(step, trainable, opt_state, rng, critic, critic_opt_state)``, created
already sharded.

``trainable`` is the LoRA tree (``rl.trainable = 'lora'``; the base params stay outside the
state, frozen) or the whole params tree (``'full'``). ``critic`` is PPO's value function
(``rl/value.py``: the value head, plus the critic's own LoRA tree when it does not share the
policy's backbone) with its own optimizer state; both are None for critic-free algorithms
(GRPO family, DPO), which then checkpoint exactly the arrays they did before.

Every leaf, the optimizer moments included, is placed by the one table of rules in
``parallel.PARAM_SHARDING_RULES``: the rules match the end of each leaf's path, so
``opt_state/.../mu/layers_0/mlp/down_proj/kernel`` is sharded like the kernel itself, and
scalars (step, Adam's count) are replicated.

``rng`` is the run's root key (raw ``uint32`` key data, as ``jax.random.key_data`` gives, so
that a checkpoint holds a plain array); it never changes. Per-step keys come from the table
of streams in ``rlvr_jax/rng_streams.py`` (:func:`step_rng`), so a resumed run draws the
same numbers as one that never stopped.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from rlvr_jax.parallel import param_shardings
from rlvr_jax.rng_streams import counter_key

PyTree = Any


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: optimizer updates applied so far
    trainable: PyTree  # LoRA tree, or all params in full fine-tuning
    opt_state: optax.OptState
    rng: jax.Array  # uint32 key data of the run's base key
    critic: PyTree = None  # PPO: {"value_head": ..., "lora": ... (separate backbone)}; else None
    critic_opt_state: optax.OptState = None


def train_state_shardings(state: TrainState, mesh: Mesh) -> TrainState:
    """NamedShardings for every leaf of ``state`` (arrays or ShapeDtypeStructs)."""
    return param_shardings(state, mesh)


def init_train_state(
    trainable: PyTree,
    optimizer: optax.GradientTransformation,
    rng: jax.Array,
    mesh: Mesh,
    critic: PyTree = None,
    critic_optimizer: optax.GradientTransformation | None = None,
) -> TrainState:
    """Step 0, ``optimizer.init(trainable)`` (and ``critic_optimizer.init(critic)``), placed on
    ``mesh`` by the sharding rules.

    ``trainable`` is copied (never aliased), so in full fine-tuning the caller's params can
    stay alive as the frozen reference while the state's copy is donated step after step.
    ``rng`` is a typed key (``jax.random.key``) or raw key data.
    """
    if jnp.issubdtype(rng.dtype, jax.dtypes.prng_key):
        rng = jax.random.key_data(rng)

    if (critic is None) != (critic_optimizer is None):
        raise ValueError("init_train_state: pass both critic and critic_optimizer, or neither")

    def init(trainable: PyTree, rng: jax.Array, critic: PyTree) -> TrainState:
        trainable = jax.tree.map(jnp.copy, trainable)
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            trainable=trainable,
            opt_state=optimizer.init(trainable),
            rng=rng,
            critic=critic,
            critic_opt_state=None if critic is None else critic_optimizer.init(critic),
        )

    shardings = train_state_shardings(jax.eval_shape(init, trainable, rng, critic), mesh)
    return jax.jit(init, out_shardings=shardings)(trainable, rng, critic)


def step_rng(state: TrainState, stream: int) -> jax.Array:
    """A typed key for this update of ``stream`` (``rng_streams.ROLLOUT``, ...)."""
    return counter_key(state.rng, stream, state.step)


def apply_if(flag: jax.Array, new: PyTree, old: PyTree) -> PyTree:
    """``new`` where the traced scalar ``flag`` is true, else ``old``, leaf by leaf: an update
    that is skipped (PPO's critic warm-up, a DPO batch without pairs) without a recompile."""
    return jax.tree.map(lambda n, o: jnp.where(flag, n, o), new, old)
