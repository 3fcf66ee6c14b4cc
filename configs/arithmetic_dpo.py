"""Online DPO from verified pairs on the embedded default task (2-digit addition, SmolLM2).

Same model, task, prompts, samples per step (8 x 8) and budget as configs/arithmetic.py;
per prompt, up to `rl.dpo.pairs_per_prompt` pairs of (a sample the verifier accepts, one it
rejects) train the DPO loss against the base model (LoRA absent). `rl.beta` is DPO's beta.
See rlvr_jax/rl/dpo.py.

    python scripts/train.py --config=configs/arithmetic_dpo.py --workdir=runs/arithmetic_dpo
    python scripts/train.py --config=configs/arithmetic_dpo.py --config.rl.dpo.loss=ipo \
        --workdir=runs/arithmetic_ipo
"""

from rlvr_jax.config_builder import sibling_config


def get_config():
    c = sibling_config(__file__, "arithmetic")
    c.rl.algorithm = "dpo"
    c.rl.beta = 0.1  # DPO's beta (Rafailov et al., 2023)
    return c
