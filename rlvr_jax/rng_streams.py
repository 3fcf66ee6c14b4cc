"""The one table of a run's random streams, all derived from ``jax.random.key(config.seed)``.

    stream      value   key                                        drawn for
    ROLLOUT     0       fold_in(fold_in(root, ROLLOUT), update)    training samples of an RL step
    LORA_INIT   1       fold_in(root, LORA_INIT)                   the LoRA `a` factors
    CRITIC_INIT 2       fold_in(root, CRITIC_INIT)                 PPO's separate critic LoRA
    EVAL        7       fold_in(fold_in(root, EVAL), question)     evaluation samples, per block
                                                                   of questions (resumable)

The stream is folded in first, the counter second, so no two streams can meet: the
rollout key of update 7 is not the evaluation key of question 7. ``update`` is the train
state's optimizer-update count (``TrainState.step``), so a resumed run draws exactly what
an uninterrupted one draws; evaluation keys do not depend on the training step, so every
evaluation of a run samples with the same keys (comparable across checkpoints).
"""

from __future__ import annotations

import jax

ROLLOUT = 0
LORA_INIT = 1
CRITIC_INIT = 2
EVAL = 7


def stream_key(root: jax.Array, stream: int) -> jax.Array:
    """The key of `stream` (a typed key, from a typed root or raw key data)."""
    if not jax.dtypes.issubdtype(root.dtype, jax.dtypes.prng_key):
        root = jax.random.wrap_key_data(root)
    return jax.random.fold_in(root, stream)


def counter_key(root: jax.Array, stream: int, counter: int | jax.Array) -> jax.Array:
    """The key of draw number `counter` (an RL update, a question index) of `stream`."""
    return jax.random.fold_in(stream_key(root, stream), counter)
