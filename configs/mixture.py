"""Multi-task GRPO: arithmetic + countdown (+ GSM8K) on SmolLM2-135M-Instruct, one LoRA.

    python scripts/train.py --config=configs/mixture.py --workdir=runs/mixture
    python scripts/train.py --config=configs/mixture.py --config.max_steps=24 \
        --config.data.mixture.countdown.weight=2.0 --workdir=runs/mixture24
    # GSM8K joins when it has a path and a weight (left out by weight 0 otherwise):
    python scripts/train.py --config=configs/mixture.py \
        --config.data.mixture.gsm8k.data.path=../shared/data/gsm8k \
        --config.data.mixture.gsm8k.weight=1.0 --workdir=runs/mixture_gsm8k
    python scripts/eval.py --config=configs/mixture.py --workdir=runs/mixture --out=runs/eval/mix

Each task of `data.mixture` holds only the keys of `data`, `prompt` and `rewards` that
differ from those sections (configs/arithmetic.py, whose model and RL settings this
config keeps); its rewards score its own rows, and metrics and evaluation are per task
(`reward/<task>/...`, `eval/<task>/accuracy`) plus the weighted total.
"""

from rlvr_jax.config_builder import sibling_config


def get_config():
    c = sibling_config(__file__, "arithmetic")
    countdown = sibling_config(__file__, "countdown")
    gsm8k = sibling_config(__file__, "gsm8k")
    c.data.mixture = dict(
        arithmetic=dict(
            weight=1.0,  # share of each batch's prompts (normalized over the tasks)
            data=dict(name="arithmetic"),
            prompt=dict(),  # configs/arithmetic.py's no_system prompt
            rewards=dict(),  # its answer_match (lenient)
        ),
        countdown=dict(
            weight=1.0,
            data=dict(name="countdown"),
            prompt=dict(style=countdown.prompt.style, user_template=countdown.prompt.user_template),
            rewards=dict(fns=countdown.rewards.fns, correctness=countdown.rewards.correctness),
        ),
        gsm8k=dict(
            weight=0.0,  # 0 = left out; set with data.path to train on GSM8K too
            data=dict(name="gsm8k", path="", subset=gsm8k.data.subset),  # path: hub id or dir
            prompt=dict(style=gsm8k.prompt.style),
            rewards=dict(fns=gsm8k.rewards.fns, correctness=gsm8k.rewards.correctness),
        ),
    )
    c.max_steps = 24
    c.sampling.max_new_tokens = 256  # countdown's and GSM8K's budget
    c.sampling.prompt_buckets = (64, 128, 256, 512)
    c.eval.max_new_tokens = 256
    c.eval.every_steps = 12
    c.eval.train_max_samples = 100  # per task
    return c
