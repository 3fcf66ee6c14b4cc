"""Countdown (TinyZero): combine the given numbers with + - * / to reach the target.

    python scripts/train.py --config=configs/countdown.py --workdir=runs/countdown
    python scripts/train.py --config=configs/countdown.py \
        --config.model.checkpoint=Qwen/Qwen2.5-3B-Instruct --workdir=/ckpt/countdown
"""

from rlvr_jax.config_builder import sibling_config


def get_config():
    c = sibling_config(__file__, "arithmetic")
    c.max_steps = 200
    c.data.name = "countdown"
    c.prompt.style = "reasoning"
    c.prompt.user_template = (
        "{question} Write the equation alone between {answer_start} and {answer_end}."
    )
    c.rewards.fns = [
        dict(name="countdown_equation", weight=1.0, params=dict(mode="strict")),
        dict(name="format_exact", weight=0.1, params=dict(matched=1.0, unmatched=0.0)),
    ]
    c.rewards.correctness = "countdown_equation"
    c.sampling.max_new_tokens = 256
    c.eval.max_new_tokens = 256
    return c
