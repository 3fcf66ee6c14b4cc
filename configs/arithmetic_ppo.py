"""PPO with a value head and GAE on the embedded default task (2-digit addition, SmolLM2).

Same model, task, prompts, samples per step (8 x 8) and budget as configs/arithmetic.py;
only the algorithm differs: a critic (a value head on the policy's LoRA backbone) gives
per-token GAE advantages instead of the group baseline, and the KL to the base is paid
per token in the reward (classic RLHF PPO). See rlvr_jax/rl/ppo.py.

    python scripts/train.py --config=configs/arithmetic_ppo.py --workdir=runs/arithmetic_ppo
    python scripts/train.py --config=configs/arithmetic_ppo.py --config.rl.ppo.critic=separate \
        --workdir=runs/arithmetic_ppo_separate                 # a critic with its own LoRA
"""

from rlvr_jax.config_builder import sibling_config


def get_config():
    c = sibling_config(__file__, "arithmetic")
    c.rl.algorithm = "ppo"
    c.rl.loss_type = "dapo"  # token-mean surrogate: PPO's per-token advantages, unweighted
    return c
