"""The README's Python example runs as written (on the real SmolLM2-135M from the wheel)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)


def test_readme_has_a_python_example():
    assert len(python_blocks()) == 1


@pytest.mark.slow
def test_readme_python_example_runs():
    (code,) = python_blocks()
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert re.search(r"\d", proc.stdout), f"no answer printed: {proc.stdout!r}"
