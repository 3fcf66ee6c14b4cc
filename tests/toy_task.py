"""The toy task every algorithm must learn: reward 1 when the first completion token is a
chosen token, which the tiny model emits at chance (~1/V) before training.

Shared by the learning tests of GRPO (test_learning_toy.py) and of PPO and DPO
(test_learning_ppo_dpo.py): the same prompts, model, target token and sampler.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from tiny_rl import VOCAB, tiny_model

from rlvr_jax.models import left_padded_positions
from rlvr_jax.parallel import MeshConfig, make_mesh
from rlvr_jax.rl.train_state import step_rng
from rlvr_jax.rng_streams import EVAL
from rlvr_jax.sampling import SamplingConfig, SpecialTokens
from rlvr_jax.sampling.prompts import left_pad

GROUP = 8
PROMPTS = [[5, 9, 11], [4, 4, 30, 2, 17], [12, 40, 1, 33, 8, 2], [3, 14, 15, 9, 26, 5, 35]]
SAMPLING = SamplingConfig(
    num_samples=GROUP,
    max_new_tokens=2,
    temperature=1.0,
    top_k=0,
    top_p=1.0,
    extra_stop_token_ids=(),
    prompt_buckets=(8,),
)
NO_STOPS = SpecialTokens(stop_token_ids=(), pad_token_id=0)


def decisive_params():
    """The tiny model with a 20x LM head: LoRA (which leaves the head frozen) can then make
    one token's probability close to 1; at the default 0.02 std the logits cannot leave ~0.
    """
    _, params = tiny_model()
    return {**params, "lm_head": {"kernel": params["lm_head"]["kernel"] * 20.0}}


def chance_token(model, params) -> tuple[int, float]:
    """The token whose mean first-token probability over the prompts is closest to 1/V."""
    tokens, mask = left_pad(PROMPTS, (8,), 0)
    logits, _ = model.apply({"params": params}, tokens, left_padded_positions(mask), mask)
    probs = np.asarray(jnp.mean(jax.nn.softmax(logits[:, -1], axis=-1), axis=0))
    token = int(np.argmin(np.abs(probs - 1.0 / VOCAB)))
    return token, float(probs[token])


def one_device_mesh():
    return make_mesh(MeshConfig(data=1, fsdp=-1), jax.devices()[:1])


def rewards_of(completions, target: int) -> np.ndarray:
    return (np.asarray(completions.ids)[:, 0] == target).astype(np.float32)


def final_reward(policy, state, target: int) -> float:
    """Mean reward of 256 fresh samples (keys of the EVAL stream)."""
    completions = policy.sample(
        state.trainable, PROMPTS * 8, step_rng(state, EVAL), SAMPLING, NO_STOPS
    )
    return float(np.mean(rewards_of(completions, target)))
