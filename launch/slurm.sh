#!/usr/bin/env bash
# Usage: launch/slurm.sh --nodes=N [--gpus_per_node=G] [--partition=P] [--time=HH:MM:SS]
#            [--job_name=NAME] [--sbatch_option=OPT]... [--python=PY] [--repo_dir=DIR]
#            [--script=train|eval] [--dry-run] -- <scripts/train.py args>
#
# Writes an sbatch script that runs scripts/train.py (or scripts/eval.py with
# --script=eval) as one process per node (`srun PY scripts/train.py ARGS`), and submits it
# with sbatch; JAX finds the coordinator, the process count and each process's id in
# SLURM's environment itself. Every process runs the same command with the same config and
# --workdir, which must be on a filesystem all nodes share; only process 0 logs and exports.
#
#   --nodes=N            nodes, one JAX process on each (required)
#   --gpus_per_node=G    GPUs to request per node (default: none requested)
#   --partition=P        the partition (default: the cluster's default)
#   --time=HH:MM:SS      the time limit (default: the partition's)
#   --job_name=NAME      the job's name (default rlvr_jax)
#   --sbatch_option=OPT  one more `#SBATCH OPT` line, e.g. --sbatch_option=--account=A
#                        (repeatable)
#   --python=PY          the Python the nodes run, e.g. a shared venv's (default python)
#   --repo_dir=DIR       the checkout the nodes run in (default: this one)
#   --script=train|eval  scripts/train.py (default) or scripts/eval.py
#   --dry-run            print the sbatch script to stdout; submit nothing
set -euo pipefail

SHORT_USAGE='launch/slurm.sh --nodes=N [--gpus_per_node=G] [--partition=P] [--time=HH:MM:SS] [--dry-run] -- <train.py args>'
# shellcheck source=launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

nodes="" gpus_per_node="" partition="" time_limit="" job_name=rlvr_jax python=python
repo_dir="" script=train dry_run=0
sbatch_options=() args=()
while (($#)); do
  case $1 in
    --nodes=*) nodes=${1#*=} ;;
    --gpus_per_node=*) gpus_per_node=${1#*=} ;;
    --partition=*) partition=${1#*=} ;;
    --time=*) time_limit=${1#*=} ;;
    --job_name=*) job_name=${1#*=} ;;
    --sbatch_option=*) sbatch_options+=("${1#*=}") ;;
    --python=*) python=${1#*=} ;;
    --repo_dir=*) repo_dir=${1#*=} ;;
    --script=*) script=${1#*=} ;;
    --dry-run | --dry_run) dry_run=1 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; args=("$@"); break ;;
    --nodes | --gpus_per_node | --partition | --time | --job_name | --sbatch_option | \
      --python | --repo_dir | --script)
      die "$1 needs a value: $1=VALUE" ;;
    *) die "unknown option '$1' (arguments for the Python script go after --)" ;;
  esac
  shift
done

[[ -n $nodes ]] || die "missing required flag --nodes=N"
positive_int --nodes "$nodes"
[[ -z $gpus_per_node ]] || positive_int --gpus_per_node "$gpus_per_node"
if [[ -n $time_limit && ! $time_limit =~ ^([0-9]+-)?[0-9]+(:[0-9]+){0,2}$ ]]; then
  die "--time must look like HH:MM:SS (or D-HH:MM:SS, MM, ...), got '$time_limit'"
fi
[[ $partition =~ ^[A-Za-z0-9_.,-]*$ ]] || die "--partition: unexpected characters in '$partition'"
[[ $job_name =~ ^[A-Za-z0-9_.-]+$ ]] || die "--job_name: use letters, digits, _ . - ('$job_name')"
for option in ${sbatch_options[@]+"${sbatch_options[@]}"}; do
  no_newline --sbatch_option "$option"
  [[ $option == -* ]] || die "--sbatch_option takes an sbatch option such as --account=A, got '$option'"
done
case $script in
  train | eval) ;;
  *) die "--script must be train or eval, got '$script'" ;;
esac
[[ -n $repo_dir ]] || repo_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

job_script() {
  echo "#!/usr/bin/env bash"
  echo "#SBATCH --job-name=$job_name"
  echo "#SBATCH --nodes=$nodes"
  echo "#SBATCH --ntasks-per-node=1"
  [[ -z $gpus_per_node ]] || echo "#SBATCH --gpus-per-node=$gpus_per_node"
  [[ -z $partition ]] || echo "#SBATCH --partition=$partition"
  [[ -z $time_limit ]] || echo "#SBATCH --time=$time_limit"
  local option
  for option in ${sbatch_options[@]+"${sbatch_options[@]}"}; do
    echo "#SBATCH $option"
  done
  echo "# One JAX process per node; JAX reads the coordinator, the process count and ids from"
  echo "# SLURM's environment (SLURM_JOB_ID, SLURM_NTASKS, SLURM_PROCID, ...)."
  echo "set -euo pipefail"
  echo "cd $(quote "$repo_dir")"
  echo "srun $(quote_words "$python" "scripts/$script.py" ${args[@]+"${args[@]}"})"
}

if ((dry_run)); then
  job_script
  exit 0
fi
command -v sbatch >/dev/null || fail "sbatch not found: run this on a SLURM login node"
file=$(mktemp "${TMPDIR:-/tmp}/rlvr_jax_sbatch.XXXXXX")
trap 'rm -f "$file"' EXIT
job_script >"$file"
echo "launch/slurm.sh: submitting (print it with --dry-run):" >&2
sbatch "$file"  # sbatch keeps its own copy of the script
