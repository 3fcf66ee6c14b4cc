"""Command-line flags the scripts share: how a process joins a multi-process run.

    python scripts/train.py ... --coordinator=10.0.0.1:1234 --num_processes=2 --process_id=0

Importing this module defines the flags; `initialize_distributed()` (call it first in
`main`) joins the run described by the flags over JAX's environment variables
(`JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`), or the SLURM, Open
MPI and Cloud TPU environments JAX detects itself (`parallel.maybe_initialize_distributed`).
"""

from absl import flags

from rlvr_jax.parallel import ProcessGroup, maybe_initialize_distributed

_DISTRIBUTED = flags.DEFINE_enum(
    "distributed",
    "auto",
    ["auto", "on", "off"],
    "jax.distributed.initialize(): 'auto' when a coordinator or a cluster launcher is found.",
)
_COORDINATOR = flags.DEFINE_string(
    "coordinator", None, "host:port of process 0's coordinator (else JAX_COORDINATOR_ADDRESS)."
)
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "Processes in the run (else JAX_NUM_PROCESSES).", lower_bound=1
)
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "This process's index (else JAX_PROCESS_ID).", lower_bound=0
)


def initialize_distributed() -> bool:
    """Joins the multi-process run the flags or the environment describe; see module doc."""
    enabled = {"auto": None, "on": True, "off": False}[_DISTRIBUTED.value]
    group = ProcessGroup(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    return maybe_initialize_distributed(enabled, flags=group)
