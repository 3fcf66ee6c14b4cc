#!/usr/bin/env bash
# Usage: launch/local.sh --num_processes=N --devices_per_process=D [--port=P]
#            [--script=train|eval] [--logs_dir=DIR] [--dry-run] -- <scripts/train.py args>
#
# Runs N JAX processes of scripts/train.py (or scripts/eval.py with --script=eval) on this
# machine's CPU, each with D virtual devices, joined through a coordinator on 127.0.0.1:P:
# process i gets XLA_FLAGS=--xla_force_host_platform_device_count=D JAX_PLATFORMS=cpu
# JAX_COORDINATOR_ADDRESS=127.0.0.1:P JAX_NUM_PROCESSES=N JAX_PROCESS_ID=i. It is the
# multi-process code path of a pod, on a laptop: every process runs the same command with
# the same config and --workdir; only process 0 logs and exports.
#
#   --num_processes=N        processes to start (required)
#   --devices_per_process=D  CPU devices per process (required)
#   --port=P                 coordinator port on 127.0.0.1 (default 12355)
#   --script=train|eval      scripts/train.py (default) or scripts/eval.py
#   --logs_dir=DIR           process i writes DIR/process_i.log (default: the args'
#                            --workdir (eval: --out) + /launch_logs, else ./launch_logs)
#   --dry-run                print the commands and their environment; run nothing
#
# Commands run from the repository root (relative paths in the arguments are relative to
# it), with $PYTHON (default: python). The script follows process 0's log, waits for all
# processes, stops the others as soon as one fails, and exits with the first failure's
# status. Example:
#   launch/local.sh --num_processes=2 --devices_per_process=2 -- \
#       --config=configs/tiny.py --workdir=/tmp/w
set -euo pipefail

SHORT_USAGE='launch/local.sh --num_processes=N --devices_per_process=D [--port=P] [--dry-run] -- <train.py args>'
# shellcheck source=launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

num_processes="" devices_per_process="" port=12355 script=train logs_dir="" dry_run=0
args=()
while (($#)); do
  case $1 in
    --num_processes=*) num_processes=${1#*=} ;;
    --devices_per_process=*) devices_per_process=${1#*=} ;;
    --port=*) port=${1#*=} ;;
    --script=*) script=${1#*=} ;;
    --logs_dir=*) logs_dir=${1#*=} ;;
    --dry-run | --dry_run) dry_run=1 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; args=("$@"); break ;;
    --num_processes | --devices_per_process | --port | --script | --logs_dir)
      die "$1 needs a value: $1=VALUE" ;;
    *) die "unknown option '$1' (arguments for the Python script go after --)" ;;
  esac
  shift
done

[[ -n $num_processes ]] || die "missing required flag --num_processes=N"
[[ -n $devices_per_process ]] || die "missing required flag --devices_per_process=D"
positive_int --num_processes "$num_processes"
positive_int --devices_per_process "$devices_per_process"
positive_int --port "$port"
((port <= 65535)) || die "--port must be at most 65535, got $port"
case $script in
  train | eval) ;;
  *) die "--script must be train or eval, got '$script'" ;;
esac

if [[ -z $logs_dir ]]; then
  # The run's own directory (train: --workdir, eval: --out) unless it is a bucket.
  key=workdir
  [[ $script == eval ]] && key=out
  base=. expect_value=0
  for arg in ${args[@]+"${args[@]}"}; do
    if ((expect_value)); then base=$arg; expect_value=0; fi
    case $arg in
      "--$key="*) base=${arg#*=} ;;
      "--$key") expect_value=1 ;;
    esac
  done
  [[ $base == *://* ]] && base=.
  logs_dir=${base%/}/launch_logs
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python}
xla_flags="${XLA_FLAGS:+$XLA_FLAGS }--xla_force_host_platform_device_count=$devices_per_process"

# The environment and the command of process $1 (sets `cmd`).
process_command() {
  cmd=(env "XLA_FLAGS=$xla_flags" JAX_PLATFORMS=cpu "JAX_COORDINATOR_ADDRESS=127.0.0.1:$port"
    "JAX_NUM_PROCESSES=$num_processes" "JAX_PROCESS_ID=$1"
    "$python" "scripts/$script.py" ${args[@]+"${args[@]}"})
}
log_file() { printf '%s/process_%d.log' "$logs_dir" "$1"; }

if ((dry_run)); then
  echo "# $num_processes processes on this machine, coordinator 127.0.0.1:$port; process 0 logs."
  echo "cd $(quote "$repo")"
  echo "mkdir -p $(quote "$logs_dir")"
  for ((i = 0; i < num_processes; i++)); do
    process_command "$i"
    echo "$(quote_words "${cmd[@]}") > $(quote "$(log_file "$i")") 2>&1 &"
  done
  echo "wait"
  exit 0
fi

command -v "$python" >/dev/null || fail "'$python' not found: activate the environment or set PYTHON"
cd "$repo"
mkdir -p "$logs_dir"

pids=() finished=() tail_pid="" stopping=0 deadline=0
stop_all() {  # SIGTERM to the processes still running; SIGKILL after a 10 s grace.
  local i
  ((stopping)) && return 0
  stopping=1 deadline=$((SECONDS + 10))
  for i in "${!pids[@]}"; do
    [[ -n ${finished[i]:-} ]] || kill -TERM "${pids[i]}" 2>/dev/null || true
  done
}
# shellcheck disable=SC2329  # called by the EXIT trap
cleanup() {
  local i
  for i in "${!pids[@]}"; do
    [[ -n ${finished[i]:-} ]] || kill -KILL "${pids[i]}" 2>/dev/null || true
  done
  [[ -z $tail_pid ]] || kill "$tail_pid" 2>/dev/null || true
}
trap cleanup EXIT
interrupted=0
# shellcheck disable=SC2329  # called by the INT and TERM traps
on_signal() {
  echo "launch/local.sh: $1; stopping the processes" >&2
  interrupted=$2
  stop_all
}
trap 'on_signal interrupted 130' INT
trap 'on_signal terminated 143' TERM

echo "launch/local.sh: $num_processes processes, coordinator 127.0.0.1:$port, logs in $logs_dir/" >&2
for ((i = 0; i < num_processes; i++)); do
  process_command "$i"
  : >"$(log_file "$i")"  # exists before `tail -f` opens it
  "${cmd[@]}" >"$(log_file "$i")" 2>&1 &
  pids[i]=$!
done
tail -n +1 -f "$(log_file 0)" &
tail_pid=$!

status=0 remaining=$num_processes
while ((remaining > 0)); do
  for i in "${!pids[@]}"; do
    [[ -z ${finished[i]:-} ]] || continue
    if kill -0 "${pids[i]}" 2>/dev/null; then continue; fi  # still running
    rc=0
    wait "${pids[i]}" || rc=$?
    finished[i]=1 remaining=$((remaining - 1))
    if ((rc != 0 && status == 0 && !stopping)); then
      status=$rc
      {
        echo "launch/local.sh: process $i failed (exit $rc); stopping the others. Its log's end:"
        tail -n 20 "$(log_file "$i")"
      } >&2
      stop_all
    fi
  done
  if ((remaining > 0)); then
    if ((stopping && SECONDS >= deadline)); then
      for i in "${!pids[@]}"; do
        [[ -n ${finished[i]:-} ]] || kill -KILL "${pids[i]}" 2>/dev/null || true
      done
    fi
    sleep 1
  fi
done
((interrupted == 0 || status != 0)) || status=$interrupted
if ((status == 0)); then
  echo "launch/local.sh: all $num_processes processes finished; logs in $logs_dir/" >&2
fi
exit "$status"
