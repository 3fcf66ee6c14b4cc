"""DAPO on the embedded default task (2-digit addition, SmolLM2): dynamic sampling on,
clip-higher, token-level loss, no KL term.

Same model, task, prompts, samples per step (8 x 8) and steps as configs/arithmetic.py.
DAPO (Yu et al., 2025) drops the reference (beta = 0), raises the upper clip to 0.28,
averages the loss over every token of the batch, and trains only on groups whose rewards
vary: `rl.dynamic_sampling` draws more prompts (at most `max_rounds` batches per step) to
fill the batch with such groups. See rlvr_jax/dynamic_sampling.py.

    python scripts/train.py --config=configs/arithmetic_dapo.py --workdir=runs/arithmetic_dapo
"""

from rlvr_jax.config_builder import sibling_config


def get_config():
    c = sibling_config(__file__, "arithmetic")
    c.rl.loss_type = "dapo"  # token-level loss
    c.rl.eps_high = 0.28  # clip-higher
    c.rl.beta = 0.0  # no KL to the base, no reference forward
    c.rl.dynamic_sampling.enabled = True
    c.rl.dynamic_sampling.max_rounds = 4
    return c
