#!/usr/bin/env bash
# Re-resolves requirements/lock-py<XY>.txt: the exact versions that .ci/run and
# scripts/quickstart.sh install with (`pip install -c <lock> -e '.[test]'`), for the python3
# on PATH, from pyproject.toml's dependencies and its test and wandb extras. Needs uv
# (`pip install uv`).
#   bash scripts/update_lock.sh                         # keep every pin, resolve what is new
#   bash scripts/update_lock.sh --upgrade-package jax   # move one package (and what it needs)
#   bash scripts/update_lock.sh --upgrade               # move all to the newest allowed
# Then run the tests (bash .ci/run) and commit the lock with the change that needed it.
# torch is written without its local label (2.13.0, not 2.13.0+cpu): the CPU wheel found
# through PIP_FIND_LINKS and PyPI's wheel both satisfy it.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
lock="requirements/lock-py${version/./}.txt"
links=()
if [[ -n "${PIP_FIND_LINKS:-}" ]]; then
  links=(--find-links "$PIP_FIND_LINKS")
fi
mkdir -p requirements
uv pip compile pyproject.toml --extra test --extra wandb --python-version "$version" \
  --annotation-style line --custom-compile-command "bash scripts/update_lock.sh" \
  "${links[@]}" -o "$lock" "$@"
sed -i -E 's/^(torch==[0-9.]+)\+cpu/\1/' "$lock"
echo "wrote $lock"
