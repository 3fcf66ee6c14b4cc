"""Train a policy with GRPO-family RL from verifiable rewards.

    python scripts/train.py --config=configs/arithmetic.py --workdir=runs/arithmetic
    python scripts/train.py --config=configs/gsm8k.py --config.rl.beta=0.0 --workdir=/ckpt/run1

Every behaviour is a config key (`--config.<group>.<key>=value`); a run resumes from the
latest checkpoint in --workdir. Intentionally short: the logic lives in `rlvr_jax.train`.
"""

from absl import app, flags, logging
from ml_collections import config_flags

from rlvr_jax.cli import initialize_distributed

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, metrics and exports go here.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    initialize_distributed()
    import jax

    from rlvr_jax.train import train_and_evaluate

    logging.info(
        "JAX devices: %s (process %d of %d)",
        jax.devices(),
        jax.process_index(),
        jax.process_count(),
    )
    logging.info("config:\n%s", _CONFIG.value)
    train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    app.run(main)
