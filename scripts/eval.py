"""Evaluate a base model or a training run: greedy pass@1, pass@k, maj@k, with intervals.

    python scripts/eval.py --config=configs/gsm8k.py --config.data.path=../shared/data/gsm8k \
        --out=runs/eval/base                               # the base model, all 1319 questions
    python scripts/eval.py --config=configs/gsm8k.py --workdir=/ckpt/run1 --out=runs/eval/run1
    python scripts/eval.py --config=configs/gsm8k.py --config.eval.num_samples=8 \
        --config.eval.ks=1,8 --config.eval.max_samples=200 --out=runs/eval/base200
    python scripts/eval.py --config=configs/gsm8k.py --compare=runs/eval/run1,runs/eval/base \
        --out=runs/eval/run1_vs_base                       # paired test (McNemar / bootstrap)

Results are written per question as they finish; rerunning the same command continues.
"""

from absl import app, flags
from ml_collections import config_flags

from rlvr_jax.cli import initialize_distributed
from rlvr_jax.log_filter import quiet_third_party_logging

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "A training run; omit to evaluate the base.")
_OUT = flags.DEFINE_string("out", None, "Output directory (questions.jsonl, report.*).")
_COMPARE = flags.DEFINE_list("compare", None, "Two evaluation directories A,B: report A - B.")
flags.mark_flags_as_required(["config", "out"])


def main(argv):
    del argv
    quiet_third_party_logging(not _CONFIG.value.observers.third_party_logging)
    initialize_distributed()
    from rlvr_jax.evaluation.evaluate_run import compare_dirs, evaluate_run

    if _COMPARE.value:
        if len(_COMPARE.value) != 2:
            raise app.UsageError("--compare takes two evaluation directories: A,B")
        compare_dirs(_CONFIG.value, *_COMPARE.value, _OUT.value)
    else:
        evaluate_run(_CONFIG.value, _WORKDIR.value, _OUT.value)


if __name__ == "__main__":
    app.run(main)
