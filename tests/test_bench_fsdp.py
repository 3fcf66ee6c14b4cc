"""scripts/bench_fsdp.py at one layer: fsdp=8 holds at most 1/4 of data=8's state per device.

A subprocess, since the script fixes 8 fake CPU devices before JAX starts; one layer and 8
rows compile in seconds.
"""

import json
import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_fsdp_shards_params_and_optimizer_state(tmp_path):
    out = tmp_path / "bench_fsdp.json"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench_fsdp.py"), "--layers", "1", "--rows", "8"]
        + ["--out", str(out)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "| **params + optimizer state** |" in proc.stdout
    report = json.loads(out.read_text())
    data, fsdp = report["meshes"]["data=8"], report["meshes"]["fsdp=8"]
    assert data["mesh"] == {"data": 8, "fsdp": 1} and fsdp["mesh"] == {"data": 1, "fsdp": 8}
    # data=8 replicates the whole state; fsdp=8 shards all but the norm scales.
    assert data["params_opt_bytes"] == report["whole_model"]["params_opt_bytes"]
    assert 4 * fsdp["params_opt_bytes"] <= data["params_opt_bytes"]
    stats = fsdp["memory_analysis"]
    if stats is not None:  # the compiled program takes the sharded state as its arguments
        assert stats["argument"] < 2 * fsdp["params_opt_bytes"]
