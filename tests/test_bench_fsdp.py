"""scripts/bench_fsdp.py at one layer: fsdp=8 holds at most 1/4 of data=8's state per device.

A subprocess, since the script fixes 8 fake CPU devices before JAX starts; one layer and 8
rows compile in seconds.
"""

import json

from repo_scripts import run_script


def test_fsdp_shards_params_and_optimizer_state(tmp_path):
    out = tmp_path / "bench_fsdp.json"
    stdout = run_script(
        "bench_fsdp.py", "--layers", "1", "--rows", "8", "--out", str(out), timeout=300
    )
    assert "| **params + optimizer state** |" in stdout
    report = json.loads(out.read_text())
    data, fsdp = report["meshes"]["data=8"], report["meshes"]["fsdp=8"]
    assert data["mesh"] == {"data": 8, "fsdp": 1} and fsdp["mesh"] == {"data": 1, "fsdp": 8}
    # data=8 replicates the whole state; fsdp=8 shards all but the norm scales.
    assert data["params_opt_bytes"] == report["whole_model"]["params_opt_bytes"]
    assert 4 * fsdp["params_opt_bytes"] <= data["params_opt_bytes"]
    stats = fsdp["memory_analysis"]
    if stats is not None:  # the compiled program takes the sharded state as its arguments
        assert stats["argument"] < 2 * fsdp["params_opt_bytes"]
