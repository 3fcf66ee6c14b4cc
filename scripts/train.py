"""Train a policy with GRPO-family RL from verifiable rewards.

    python scripts/train.py --config=configs/arithmetic.py --workdir=runs/arithmetic
    python scripts/train.py --config=configs/gsm8k.py --config.rl.beta=0.0 --workdir=/ckpt/run1

Every behaviour is a config key (`--config.<group>.<key>=value`); a run resumes from the
latest checkpoint in --workdir. Intentionally short: the logic lives in `rlvr_jax.train`.
The resolved config is recorded in <workdir>/runs.jsonl (--verbosity=1 also prints it).
"""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from rlvr_jax.cli import initialize_distributed
from rlvr_jax.errors import RunError
from rlvr_jax.log_filter import quiet_third_party_logging

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, metrics and exports go here.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    # Before JAX starts its backends (it logs each one it cannot find).
    quiet_third_party_logging(not _CONFIG.value.observers.third_party_logging)
    initialize_distributed()
    import jax

    from rlvr_jax.train import train_and_evaluate

    logging.info(
        "JAX devices: %s (process %d of %d)",
        jax.devices(),
        jax.process_index(),
        jax.process_count(),
    )
    overrides = config_flags.get_override_values(flags.FLAGS["config"])
    logging.info(
        "config: %s, overrides %s",
        config_flags.get_config_filename(flags.FLAGS["config"]),
        overrides,
    )
    logging.debug("config:\n%s", _CONFIG.value)
    try:
        train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    except RunError as e:  # disk, permissions, a changed config: the message says what to do
        logging.error("%s", e)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
