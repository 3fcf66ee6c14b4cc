#!/usr/bin/env bash
# Usage: launch/tpu_pod.sh --tpu=NAME --zone=ZONE [--project=P] [--repo_dir=~/rlvr_jax]
#            [--python=python3] [--script=train|eval] [--dry-run] -- <scripts/train.py args>
#        launch/tpu_pod.sh --tpu=NAME --zone=ZONE [--project=P] [--repo_dir=~/rlvr_jax]
#            [--python=python3] --setup [--dry-run]
#
# Runs scripts/train.py (or scripts/eval.py with --script=eval) on every worker of a Cloud
# TPU VM pod slice at once, through
#   gcloud compute tpus tpu-vm ssh NAME --zone=ZONE [--project=P] --worker=all \
#       --command="cd REPO_DIR && PYTHON scripts/train.py --distributed=on ARGS"
# JAX finds the pod's hosts, the process count and this host's id itself (from the TPU VM
# metadata); --distributed=on asks for that even where no TPU environment variable shows
# the pod (a later --distributed=... in ARGS wins). Every worker runs the same command with
# the same config and --workdir, which must be shared by all hosts (a gs:// bucket); only
# process 0 logs and exports. The checkout must already be at REPO_DIR on every worker
# (e.g. `gcloud compute tpus tpu-vm scp --recurse --worker=all . NAME:rlvr_jax`).
#
#   --tpu=NAME           the TPU VM (required)
#   --zone=ZONE          its zone (required)
#   --project=P          its project (default: gcloud's configured project)
#   --repo_dir=DIR       the checkout on each worker (default ~/rlvr_jax)
#   --python=PY          the workers' Python (default python3)
#   --script=train|eval  scripts/train.py (default) or scripts/eval.py
#   --setup              instead: install the package with the TPU extra on every worker
#                        (PY -m pip install -e '.[tpu]' in REPO_DIR)
#   --dry-run            print the gcloud command; run nothing
set -euo pipefail

SHORT_USAGE='launch/tpu_pod.sh --tpu=NAME --zone=ZONE [--project=P] [--repo_dir=DIR] [--setup] [--dry-run] -- <train.py args>'
# shellcheck source=launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# A directory for the remote shell: a leading ~ or ~/ stays unquoted so that it expands there.
# shellcheck disable=SC2088  # the tildes are for the remote shell to expand
quote_dir() {
  case $1 in
    "~") printf '~' ;;
    "~/"*) printf '~/%s' "$(quote "${1#"~/"}")" ;;
    *) quote "$1" ;;
  esac
}

# shellcheck disable=SC2088  # expanded by the workers' shell (see quote_dir)
tpu="" zone="" project="" repo_dir="~/rlvr_jax" python=python3 script=train setup=0 dry_run=0
args=()
while (($#)); do
  case $1 in
    --tpu=*) tpu=${1#*=} ;;
    --zone=*) zone=${1#*=} ;;
    --project=*) project=${1#*=} ;;
    --repo_dir=*) repo_dir=${1#*=} ;;
    --python=*) python=${1#*=} ;;
    --script=*) script=${1#*=} ;;
    --setup) setup=1 ;;
    --dry-run | --dry_run) dry_run=1 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; args=("$@"); break ;;
    --tpu | --zone | --project | --repo_dir | --python | --script)
      die "$1 needs a value: $1=VALUE" ;;
    *) die "unknown option '$1' (arguments for the Python script go after --)" ;;
  esac
  shift
done

[[ -n $tpu ]] || die "missing required flag --tpu=NAME"
[[ -n $zone ]] || die "missing required flag --zone=ZONE"
[[ -n $repo_dir ]] || die "--repo_dir must not be empty"
case $script in
  train | eval) ;;
  *) die "--script must be train or eval, got '$script'" ;;
esac
if ((setup)) && ((${#args[@]})); then
  die "--setup installs the package only; run again without --setup to pass arguments after --"
fi

if ((setup)); then
  remote="cd $(quote_dir "$repo_dir") && $(quote "$python") -m pip install -e '.[tpu]'"
  what="installs the package with the TPU extra on every worker of $tpu"
else
  remote="cd $(quote_dir "$repo_dir") && $(quote_words "$python" "scripts/$script.py" \
    --distributed=on ${args[@]+"${args[@]}"})"
  what="runs on every worker of $tpu at once; JAX finds the pod's hosts and process ids itself"
fi
cmd=(gcloud compute tpus tpu-vm ssh "$tpu" "--zone=$zone")
[[ -z $project ]] || cmd+=("--project=$project")
cmd+=(--worker=all "--command=$remote")

if ((dry_run)); then
  echo "# $what"
  quote_words "${cmd[@]}"
  echo
  exit 0
fi
command -v gcloud >/dev/null || fail "gcloud not found: install the Google Cloud CLI"
exec "${cmd[@]}"
