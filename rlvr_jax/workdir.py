"""The run's workdir: created and proven writable before anything is loaded or compiled.

Without the check, a read-only or missing-permission workdir fails minutes later, deep in
Orbax or a log sink, with an error that names some file inside it (or, on a full disk,
one per writer thread). `prepare_workdir` fails at once with a `WorkdirError` that names
the path and the reason.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rlvr_jax.errors import WorkdirError


def prepare_workdir(workdir: str | os.PathLike) -> Path:
    """Creates `workdir` (and parents) and writes and removes a probe file in it."""
    path = Path(workdir).absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write_probe_") as probe:
            probe.write(b"ok")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as e:
        raise WorkdirError(
            f"workdir {path} is not writable ({e.strerror or e}): choose another "
            "--workdir, or fix its permissions or free its disk"
        ) from e
    return path
