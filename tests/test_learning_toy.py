"""GRPO learns: the reward is 1 when the first completion token is a chosen token.

The whole loop as the orchestrator runs it: the KV-cache sampler with the LoRA tree,
host rewards, group advantages on the mesh, the scorer, the jitted step (LoRA, AdamW).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_rl import LORA, VOCAB, fast_compile, loss_config, optim_config, tiny_model

from rlvr_jax.models import left_padded_positions
from rlvr_jax.optim import make_optimizer, make_schedule
from rlvr_jax.parallel import MeshConfig, make_mesh
from rlvr_jax.policy import Policy
from rlvr_jax.rl.policy_logprobs import completion_logprobs
from rlvr_jax.rl.train_batch import make_train_batch
from rlvr_jax.rl.train_state import init_train_state, step_rng
from rlvr_jax.rl.train_step import TrainStepConfig, make_rollout_scorer, make_train_step
from rlvr_jax.rng_streams import EVAL, ROLLOUT
from rlvr_jax.sampling import SamplingConfig, SpecialTokens
from rlvr_jax.sampling.prompts import left_pad

GROUP = 8
STEPS = 30
PROMPTS = [[5, 9, 11], [4, 4, 30, 2, 17], [12, 40, 1, 33, 8, 2], [3, 14, 15, 9, 26, 5, 35]]


@pytest.fixture(autouse=True, scope="module")
def _fast_compile():
    with fast_compile():
        yield


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


def test_grpo_learns_to_emit_the_rewarded_token():
    model, _ = tiny_model()
    params = decisive_params()
    target, p0 = chance_token(model, params)
    assert p0 < 0.05

    mesh = make_mesh(MeshConfig(data=1, fsdp=-1), jax.devices()[:1])
    policy = Policy.create(model, params, "lora", LORA, mesh, has_reference=False)
    optim = optim_config(learning_rate=0.05)
    optimizer = make_optimizer(optim)
    state = init_train_state(
        policy.init_trainable(jax.random.key(1)), optimizer, jax.random.key(0), mesh
    )
    loss_cfg = loss_config("grpo")
    step_cfg = TrainStepConfig(num_microbatches=2, num_iterations=1, group_size=GROUP)
    scorer = make_rollout_scorer(policy, loss_cfg, step_cfg, state)
    step = make_train_step(policy, loss_cfg, step_cfg, optimizer, make_schedule(optim), state)
    sampling = SamplingConfig(
        num_samples=GROUP,
        max_new_tokens=2,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        extra_stop_token_ids=(),
        prompt_buckets=(8,),
    )
    no_stops = SpecialTokens(stop_token_ids=(), pad_token_id=0)

    mean_rewards = []
    for i in range(STEPS):
        completions = policy.sample(
            state.trainable, PROMPTS, step_rng(state, ROLLOUT), sampling, no_stops
        )
        rewards = (np.asarray(completions.ids)[:, 0] == target).astype(np.float32)
        mean_rewards.append(float(rewards.mean()))
        batch, rollout_metrics = make_train_batch(completions, rewards, mesh, GROUP, "grpo", 1e-4)
        if i == 0:  # the step's teacher-forced logprobs are the sampler's
            logp, _ = jax.jit(completion_logprobs, static_argnums=0)(
                model,
                policy.live_variables(state.trainable),
                *(batch[k] for k in ("prompt_ids", "prompt_mask", "completion_ids")),
                batch["completion_mask"],
            )
            np.testing.assert_allclose(logp, completions.logprobs, atol=1e-5)
            assert 0.0 <= float(rollout_metrics["frac_zero_std"]) <= 1.0
        state, metrics = step(state, scorer(state, batch))
        assert np.isfinite(float(metrics["loss"]))

    completions = policy.sample(
        state.trainable, PROMPTS * 8, step_rng(state, EVAL), sampling, no_stops
    )  # 256 fresh samples
    final = float(np.mean(np.asarray(completions.ids)[:, 0] == target))
    history = " ".join(f"{r:.2f}" for r in mean_rewards)
    assert np.mean(mean_rewards[:3]) < 0.2, f"not at chance at the start: {history}"
    assert final >= 0.9, f"final mean reward {final:.3f}; per step: {history}"
    assert int(state.step) == STEPS
