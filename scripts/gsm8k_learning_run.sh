#!/usr/bin/env bash
# The GSM8K learning run of BUILD_NOTES (issue 16): evaluate the base model, train
# configs/gsm8k.py for a fixed wall-clock budget, evaluate the result on the same 200 test
# questions (greedy + 8 samples), and compare the two, paired (McNemar on greedy).
#
#   scripts/gsm8k_learning_run.sh OUT_DIR [TRAIN_MINUTES]     # default 90 minutes
#
# The base evaluation is unpacked from docs/eval/gsm8k_base_200 (made by the same command)
# unless OUT_DIR/before already exists. Training stops with SIGTERM when its budget is
# spent: the run saves its last finished step and exits, and that checkpoint is evaluated.
# Every stage appends to OUT_DIR/stages.log; rerunning continues an interrupted stage.
# configs/gsm8k.py rematerializes the train step's layers (rl.remat=full, scanned) in two
# micro-batches: 2.0 GB of XLA temporaries for 64 rows x 256 tokens, against 30.7 GB
# without remat (scripts/memory_analysis.py, BUILD_NOTES).
set -euo pipefail

OUT=${1:?usage: scripts/gsm8k_learning_run.sh OUT_DIR [TRAIN_MINUTES]}
MINUTES=${2:-90}
REPO=$(cd "$(dirname "$0")/.." && pwd)
DATA=${GSM8K_DATA:-../shared/data/gsm8k}  # relative to the repo, as in the saved fingerprint
PY=${PYTHON:-python}
mkdir -p "$OUT"
cd "$REPO"

stage() { echo "$(date +%FT%T) $*" | tee -a "$OUT/stages.log"; }
EVAL=(--config=configs/gsm8k.py "--config.data.path=$DATA" --config.eval.max_samples=200
  --config.eval.num_samples=8 "--config.eval.ks=1,8" --config.eval.temperature=1.0)

if [[ ! -e $OUT/before ]]; then
  mkdir -p "$OUT/before"
  gunzip -c docs/eval/gsm8k_base_200/questions.jsonl.gz >"$OUT/before/questions.jsonl"
  cp docs/eval/gsm8k_base_200/questions.jsonl.fingerprint.json "$OUT/before/"
fi
stage "before: evaluating the base model (continues the unpacked records)"
"$PY" scripts/eval.py "${EVAL[@]}" "--out=$OUT/before" >>"$OUT/before.log" 2>&1

stage "train: configs/gsm8k.py for $MINUTES minutes"
status=0
timeout -s TERM "${MINUTES}m" "$PY" scripts/train.py --config=configs/gsm8k.py \
  "--config.data.path=$DATA" --config.eval.every_steps=0 --config.checkpoint.every_steps=1 \
  --config.max_steps=500 \
  "--workdir=$OUT/train" \
  >>"$OUT/train.log" 2>&1 || status=$?
# 124: the budget ran out and the run saved its last step on SIGTERM.
if [[ $status -ne 0 && $status -ne 124 ]]; then
  stage "train failed with exit code $status (see $OUT/train.log)"
  exit "$status"
fi

stage "after: evaluating $OUT/train"
"$PY" scripts/eval.py "${EVAL[@]}" "--workdir=$OUT/train" "--out=$OUT/after" \
  >>"$OUT/after.log" 2>&1
"$PY" scripts/eval.py --config=configs/gsm8k.py "--compare=$OUT/after,$OUT/before" \
  "--out=$OUT/compare" >>"$OUT/compare.log" 2>&1
stage "done: $OUT/compare"
