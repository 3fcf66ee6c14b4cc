#!/usr/bin/env bash
# The GSM8K learning run of BUILD_NOTES (issue 16): evaluate the base model, train
# configs/gsm8k.py, evaluate the result on the same 200 test questions (greedy + 8
# samples), and compare the two, paired (McNemar on greedy).
#
#   scripts/gsm8k_learning_run.sh OUT_DIR [TRAIN_MINUTES]     # default 90 minutes
#
# Environment:
#   FEW_SHOT=N     worked examples before each question (prompt.few_shot; default 0). With
#                  N > 0 the base model sometimes writes the reasoning/answer markers, so
#                  the format rewards vary within a group and carry a gradient.
#   TRAIN_STEPS=N  train for N RL steps instead of a wall-clock budget (a budget in steps
#                  does not shrink when something else shares the machine).
#   GSM8K_DATA     the local GSM8K directory (default ../shared/data/gsm8k).
#
# The base evaluation is unpacked from docs/eval (gsm8k_base_200 for FEW_SHOT=0,
# gsm8k_fewshot<N>_base_200 otherwise; made by this script) when it is there and
# OUT_DIR/before does not exist yet; eval.py then only checks it (or runs what is missing). A
# wall-clock budget ends training with SIGTERM: the run saves its last finished step and
# exits, and that checkpoint is evaluated. Every stage appends to OUT_DIR/stages.log;
# rerunning continues an interrupted stage (evaluation records, the training checkpoint).
set -euo pipefail

OUT=${1:?usage: scripts/gsm8k_learning_run.sh OUT_DIR [TRAIN_MINUTES]}
MINUTES=${2:-90}
FEW_SHOT=${FEW_SHOT:-0}
TRAIN_STEPS=${TRAIN_STEPS:-}
REPO=$(cd "$(dirname "$0")/.." && pwd)
DATA=${GSM8K_DATA:-../shared/data/gsm8k}  # relative to the repo, as in the saved fingerprint
PY=${PYTHON:-python}
mkdir -p "$OUT"
cd "$REPO"

stage() { echo "$(date +%FT%T) $*" | tee -a "$OUT/stages.log"; }
PROMPT=("--config.prompt.few_shot=$FEW_SHOT")
EVAL=(--config=configs/gsm8k.py "--config.data.path=$DATA" "${PROMPT[@]}"
  --config.eval.max_samples=200 --config.eval.num_samples=8 "--config.eval.ks=1,8"
  --config.eval.temperature=1.0)

SAVED=docs/eval/gsm8k_base_200
[[ $FEW_SHOT -eq 0 ]] || SAVED=docs/eval/gsm8k_fewshot${FEW_SHOT}_base_200
if [[ -e $SAVED/questions.jsonl.gz && ! -e $OUT/before ]]; then
  mkdir -p "$OUT/before"
  gunzip -c "$SAVED/questions.jsonl.gz" >"$OUT/before/questions.jsonl"
  cp "$SAVED/questions.jsonl.fingerprint.json" "$OUT/before/"
fi
stage "before: evaluating the base model (prompt.few_shot=$FEW_SHOT; continues saved records)"
"$PY" scripts/eval.py "${EVAL[@]}" "--out=$OUT/before" >>"$OUT/before.log" 2>&1

TRAIN=(scripts/train.py --config=configs/gsm8k.py "--config.data.path=$DATA" "${PROMPT[@]}"
  --config.eval.every_steps=0 --config.checkpoint.every_steps=1 "--workdir=$OUT/train")
status=0
if [[ -n $TRAIN_STEPS ]]; then
  stage "train: configs/gsm8k.py for $TRAIN_STEPS RL steps"
  "$PY" "${TRAIN[@]}" "--config.max_steps=$TRAIN_STEPS" >>"$OUT/train.log" 2>&1 || status=$?
else
  stage "train: configs/gsm8k.py for $MINUTES minutes"
  timeout -s TERM "${MINUTES}m" "$PY" "${TRAIN[@]}" --config.max_steps=500 \
    >>"$OUT/train.log" 2>&1 || status=$?
fi
# 124: the budget ran out and the run saved its last step on SIGTERM.
if [[ $status -ne 0 && ($status -ne 124 || -n $TRAIN_STEPS) ]]; then
  stage "train failed with exit code $status (see $OUT/train.log)"
  exit "$status"
fi

# A run stopped early (SIGTERM, e.g. a session ending) exits 0 after saving its step:
# with a budget in steps, evaluate only once the budget is reached.
if [[ -n $TRAIN_STEPS ]]; then
  reached=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["step"])' \
    "$OUT/train/final_metrics.json")
  if ((reached < TRAIN_STEPS)); then
    stage "train stopped at step $reached of $TRAIN_STEPS: rerun to continue"
    exit 1
  fi
fi

stage "after: evaluating $OUT/train"
"$PY" scripts/eval.py "${EVAL[@]}" "--workdir=$OUT/train" "--out=$OUT/after" \
  >>"$OUT/after.log" 2>&1
# The same eval keys: the comparison's pass@k / maj@k follow eval.ks.
"$PY" scripts/eval.py "${EVAL[@]}" "--compare=$OUT/after,$OUT/before" "--out=$OUT/compare" \
  >>"$OUT/compare.log" 2>&1
stage "done: $OUT/compare"
