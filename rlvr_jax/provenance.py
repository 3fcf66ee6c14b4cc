"""What code produced a run: package versions and the project's git commit.

    {"versions": {"jax": "0.10.2", "jaxlib": "0.10.2", ..., "rlvr_jax": "0.1.0"},
     "git_commit": "9e50030...", "git_dirty": false, "python": "3.11.7"}

recorded in each process start's row of `runs.jsonl` (`meta["provenance"]`), so two runs
that train differently can be told apart by their installs. A package that is not
installed reads None; outside a git checkout (a wheel install) the commit is None.
Pin the versions with the lock (requirements/, see README) to reproduce an install.
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

# The distributions whose versions change training numbers or checkpoint formats.
PACKAGES = (
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "orbax-checkpoint",
    "transformers",
    "tokenizers",
    "numpy",
    "ml-dtypes",
    "rlvr_jax",
)
_SOURCE = Path(__file__).resolve().parents[1]  # the checkout rlvr_jax is imported from


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution in `names` (None where not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(_SOURCE), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_commit() -> tuple[str | None, bool | None]:
    """(commit of the checkout rlvr_jax runs from, whether tracked files differ from it)."""
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return None, None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit, None if status is None else bool(status)


@functools.cache
def run_provenance() -> dict[str, Any]:
    """Versions, git commit and Python version of this process (computed once)."""
    commit, dirty = git_commit()
    return {
        "versions": package_versions(),
        "git_commit": commit,
        "git_dirty": dirty,
        "python": platform.python_version(),
    }
