"""Run a Python snippet in a fresh process that sees N fake CPU devices.

XLA reads `--xla_force_host_platform_device_count` when the backend starts, so a test that
needs several devices runs its body in a subprocess; the snippet prints "OK" last.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_on_fake_devices(script: str, *args: str, devices: int = 8, timeout: float) -> None:
    """Runs `script` with `args` as sys.argv[1:]; fails the test unless it exits 0 with OK.

    The repository and tests/ are importable (`tiny_rl` and friends).
    """
    env = dict(os.environ)
    env.update(
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
        JAX_PLATFORMS="cpu",
        PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests"), env.get("PYTHONPATH", "")]),
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), proc.stderr[-4000:]
