"""A random 2-layer model on the arithmetic task: runs an RL step in seconds (tests, smoke runs).

python scripts/train.py --config=configs/tiny.py --workdir=/tmp/tiny
python scripts/train.py --config=configs/tiny.py --config.max_steps=4 --workdir=/tmp/tiny
"""

from rlvr_jax.config_builder import sibling_config


def get_config():
    c = sibling_config(__file__, "arithmetic")
    c.max_steps = 3
    c.model.checkpoint = "tiny-random-llama"  # random weights, SmolLM2 tokenizer
    c.data.arithmetic.num_train = 64
    c.data.arithmetic.num_eval = 8
    c.sampling.num_samples = 4
    c.sampling.max_new_tokens = 8
    c.rl.prompts_per_step = 2
    c.eval.every_steps = 2
    c.eval.max_samples = 4
    c.eval.train_max_samples = 4
    c.eval.batch_size = 4
    c.eval.max_new_tokens = 8
    c.checkpoint.every_steps = 2
    c.observers.sample_every = 1
    return c
