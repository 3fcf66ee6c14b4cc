"""Device mesh, the one table of parameter sharding rules, batch sharding, multi-host setup.

Mesh axes ``('data', 'fsdp')``. Both are data-parallel axes: every device works on its own
rows of the batch, which is sharded over **both** axes (``P(('data', 'fsdp'))``). The
``fsdp`` axis additionally shards the large weight matrices (FSDP / ZeRO-3: XLA all-gathers
a weight where it is used); the ``data`` axis replicates them. Sharding the batch on
``data`` alone would make the devices of one ``fsdp`` group compute the same rows twice.

Axis types are ``Auto``: sharding is propagated by XLA (GSPMD) from the ``in_shardings`` /
``out_shardings`` of ``jit``, so model code needs no sharding annotations.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from rlvr_jax.models.layer_stack import STACKED
from rlvr_jax.models.quantization import QuantizedKernel

PyTree = Any
MESH_AXES = ("data", "fsdp")
BATCH_AXES = ("data", "fsdp")  # the leading batch axis is sharded over both mesh axes

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class MeshConfig:
    """Mesh axis sizes; every field is a config key under ``mesh``. -1 = remaining devices."""

    data: int
    fsdp: int

    def __post_init__(self):
        for key in MESH_AXES:
            size = getattr(self, key)
            if size != -1 and size < 1:
                raise ValueError(f"mesh.{key} must be -1 or >= 1, got {size}")
        if self.data == -1 and self.fsdp == -1:
            raise ValueError("mesh.data and mesh.fsdp cannot both be -1")

    def axis_sizes(self, num_devices: int) -> tuple[int, int]:
        """Resolves -1; the sizes must multiply to exactly ``num_devices``."""
        sizes = {"data": self.data, "fsdp": self.fsdp}
        for key, other in (("data", "fsdp"), ("fsdp", "data")):
            if sizes[key] == -1:
                if num_devices % sizes[other]:
                    raise ValueError(
                        f"mesh.{other} = {sizes[other]} does not divide the {num_devices} "
                        f"devices (mesh.{key} = -1 takes the rest)"
                    )
                sizes[key] = num_devices // sizes[other]
        if sizes["data"] * sizes["fsdp"] != num_devices:
            raise ValueError(
                f"mesh.data * mesh.fsdp = {sizes['data']} * {sizes['fsdp']} must equal the "
                f"{num_devices} devices; set one of them to -1 to take the remaining devices"
            )
        return sizes["data"], sizes["fsdp"]


def make_mesh(cfg: MeshConfig, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A ``('data', 'fsdp')`` mesh over ``devices`` (default: all devices, all processes)."""
    devices = jax.devices() if devices is None else list(devices)
    shape = cfg.axis_sizes(len(devices))
    return jax.make_mesh(shape, MESH_AXES, (AxisType.Auto, AxisType.Auto), devices=devices)


# Param path (the '/'-joined keys of the param tree) -> PartitionSpec; first match wins.
# Kernels are [in, out]. The model dimension D is sharded over 'fsdp' (as MaxText shards its
# 'embed' axis); LoRA factors, norms and biases are small and stay replicated.
PARAM_SHARDING_RULES: tuple[tuple[str, P], ...] = (
    (r"/(a|b)$", P()),  # LoRA factors a [in, r], b [r, out]
    (r"(^|/)embed/embedding$", P(None, "fsdp")),  # [V, D]
    (r"/attn/(q_proj|k_proj|v_proj)/kernel$", P("fsdp", None)),  # [D, N*H], [D, K*H]
    (r"/attn/o_proj/kernel$", P(None, "fsdp")),  # [N*H, D]
    (r"/mlp/(gate_proj|up_proj)/kernel$", P("fsdp", None)),  # [D, F]
    (r"/mlp/down_proj/kernel$", P(None, "fsdp")),  # [F, D]
    (r"(^|/)lm_head/kernel$", P("fsdp", None)),  # [D, V]
    (r".*", P()),  # norm scales, biases, anything else: replicated
)


def _path_str(path: tuple) -> str:
    return jax.tree_util.keystr(path, simple=True, separator="/")


def _spec_for(
    path: str,
    shape: tuple[int, ...],
    axis_sizes: Mapping[str, int],
    rules: Sequence[tuple[str, P]],
) -> tuple[P, list[str]]:
    """First matching rule's spec, with non-divisible dims replaced by None (and reported)."""
    matches = [(pattern, spec) for pattern, spec in rules if re.search(pattern, path)]
    if not matches:
        raise ValueError(f"no sharding rule matches param {path!r}; end the rules with '.*'")
    pattern, spec = matches[0]
    if len(spec) > len(shape):
        raise ValueError(f"sharding rule {pattern!r} gives {spec} for {path!r} of shape {shape}")
    dims, dropped = [], []
    for i, (dim, axes) in enumerate(zip(shape[: len(spec)], spec, strict=True)):
        names = () if axes is None else (axes if isinstance(axes, tuple) else (axes,))
        size = math.prod(axis_sizes[name] for name in names)
        if dim % size:
            dropped.append(f"{path}[{i}]={dim} by {'*'.join(names)}={size}")
            axes = None
        dims.append(axes)
    return P(*dims), dropped


def param_partition_specs(
    tree: PyTree,
    axis_sizes: Mapping[str, int],
    rules: Sequence[tuple[str, P]] = PARAM_SHARDING_RULES,
) -> PyTree:
    """A tree of PartitionSpecs for ``tree`` (arrays or ShapeDtypeStructs).

    ``axis_sizes`` is ``mesh.shape``. A stacked layer leaf (``layers/...``, scanned
    decoder) gets its per-layer spec behind an unsharded layer axis. A dim not divisible
    by its axes is replicated; all such fallbacks are logged in one warning.
    """
    dropped_all: list[str] = []

    def spec(path, leaf):
        name = _path_str(path)
        stacked = name.startswith(f"{STACKED}/")  # [L, ...]: the layer axis stays whole
        if isinstance(leaf, QuantizedKernel):  # its arrays follow the float kernel's spec
            kernel_spec, _ = _spec_for(name, leaf.shape, axis_sizes, rules)
            wanted = leaf.leaf_specs(tuple(kernel_spec))
            return jax.tree.map(
                lambda array, axes: fit(f"{name}/", array, P(*axes), stacked),
                leaf,
                wanted,
                is_leaf=lambda x: isinstance(x, tuple),
            )
        shape = tuple(leaf.shape)
        spec_, dropped = _spec_for(name, shape[1:] if stacked else shape, axis_sizes, rules)
        dropped_all.extend(dropped)
        return P(None, *spec_) if stacked else spec_

    def fit(name: str, array, wanted: P, stacked: bool) -> P:
        shape = tuple(array.shape)[1:] if stacked else tuple(array.shape)
        spec_, dropped = _spec_for(name, shape, axis_sizes, ((".*", wanted),))
        dropped_all.extend(dropped)
        return P(None, *spec_) if stacked else spec_

    specs = jax.tree_util.tree_map_with_path(
        spec, tree, is_leaf=lambda x: isinstance(x, QuantizedKernel)
    )
    if dropped_all:
        logger.warning(
            "replicated %d param dims not divisible by their mesh axes: %s",
            len(dropped_all),
            "; ".join(dropped_all[:8]) + ("; ..." if len(dropped_all) > 8 else ""),
        )
    return specs


def param_shardings(
    tree: PyTree, mesh: Mesh, rules: Sequence[tuple[str, P]] = PARAM_SHARDING_RULES
) -> PyTree:
    """A tree of NamedShardings for ``tree`` on ``mesh`` (see :func:`param_partition_specs`)."""
    specs = param_partition_specs(tree, dict(mesh.shape), rules)
    return jax.tree.map(lambda s: NamedSharding(mesh, s), specs, is_leaf=lambda x: isinstance(x, P))


def place_params(params: PyTree | None, mesh: Mesh) -> PyTree | None:
    """``params`` on ``mesh`` by the sharding rules; arrays already there are not copied."""
    return None if params is None else jax.device_put(params, param_shardings(params, mesh))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (row) axis over ``('data', 'fsdp')``; B must be divisible by the device count."""
    return NamedSharding(mesh, P(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
    """Fully replicated (scalars, rng keys, the step counter)."""
    return NamedSharding(mesh, P())


def shard_batch(batch: PyTree, mesh: Mesh) -> PyTree:
    """Global arrays from this process's rows (every leaf [B_local, ...], host numpy).

    Single process: B_local = B. Multi-host: each process passes the rows held by its own
    devices (a contiguous block in process order when, as with ``jax.make_mesh``, each
    host's devices are adjacent in the mesh); the global B is the sum over processes. Each
    process's rows must hold whole groups (its own prompts, G samples each).
    """
    sharding = batch_sharding(mesh)
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch
    )


def detect_cluster(environ: Mapping[str, str]) -> str | None:
    """Names the multi-process launcher found in ``environ``, or None.

    Detected (each also auto-detected by ``jax.distributed.initialize()``):
    ``JAX_COORDINATOR_ADDRESS`` set -> 'jax';
    ``SLURM_JOB_ID`` set and ``SLURM_NTASKS`` > 1 -> 'slurm';
    ``OMPI_MCA_orte_hnp_uri`` set and ``OMPI_COMM_WORLD_SIZE`` > 1 -> 'ompi' (mpirun);
    ``TPU_PROCESS_ADDRESSES`` or ``TPU_WORKER_HOSTNAMES`` listing several hosts, or
    ``MEGASCALE_COORDINATOR_ADDRESS`` set -> 'tpu'.
    Multi-host Cloud TPU VMs that expose none of these (JAX then asks the GCE metadata
    server) must ask explicitly (``enabled=True``).
    """

    def more_than_one(key: str) -> bool:
        return int(environ.get(key, "1") or "1") > 1

    if environ.get("JAX_COORDINATOR_ADDRESS"):
        return "jax"
    if "SLURM_JOB_ID" in environ and more_than_one("SLURM_NTASKS"):
        return "slurm"
    if "OMPI_MCA_orte_hnp_uri" in environ and more_than_one("OMPI_COMM_WORLD_SIZE"):
        return "ompi"
    hosts = environ.get("TPU_PROCESS_ADDRESSES") or environ.get("TPU_WORKER_HOSTNAMES") or ""
    if "," in hosts or environ.get("MEGASCALE_COORDINATOR_ADDRESS"):
        return "tpu"
    return None


@dataclasses.dataclass(frozen=True)
class ProcessGroup:
    """Where the coordinator listens, how many processes, which one this is (None: let
    ``jax.distributed.initialize`` detect it from SLURM, Open MPI or Cloud TPU)."""

    coordinator_address: str | None
    num_processes: int | None
    process_id: int | None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ProcessGroup:
        """JAX's own variables: ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``,
        ``JAX_PROCESS_ID`` (``jax.distributed.initialize`` reads only the first itself)."""

        def integer(key: str) -> int | None:
            value = environ.get(key, "")
            if not value:
                return None
            if not value.isdigit():
                raise ValueError(f"{key}={value!r}: expected a non-negative integer")
            return int(value)

        return cls(
            coordinator_address=environ.get("JAX_COORDINATOR_ADDRESS") or None,
            num_processes=integer("JAX_NUM_PROCESSES"),
            process_id=integer("JAX_PROCESS_ID"),
        )

    def merged(self, override: ProcessGroup) -> ProcessGroup:
        """``override``'s values where set (command-line flags over the environment)."""
        return ProcessGroup(
            *(
                mine if theirs is None else theirs
                for mine, theirs in zip(
                    dataclasses.astuple(self), dataclasses.astuple(override), strict=True
                )
            )
        )

    def check(self) -> None:
        if self.coordinator_address and (self.num_processes is None or self.process_id is None):
            raise ValueError(
                f"coordinator address {self.coordinator_address!r} given without the process "
                "count and id: set JAX_NUM_PROCESSES and JAX_PROCESS_ID (or --num_processes "
                "and --process_id)"
            )
        known = self.num_processes is not None and self.process_id is not None
        if known and not 0 <= self.process_id < self.num_processes:
            raise ValueError(f"process id {self.process_id} not in [0, {self.num_processes})")


def maybe_initialize_distributed(
    enabled: bool | None,
    environ: Mapping[str, str] | None = None,
    flags: ProcessGroup | None = None,
) -> bool:
    """Calls ``jax.distributed.initialize()`` when asked, or, if ``enabled`` is None, when
    flags name a coordinator or :func:`detect_cluster` finds a multi-process launcher.
    Returns whether the distributed system is initialized. Call it first, before any other
    JAX call touches the devices.

    The coordinator, process count and id come from ``flags`` (scripts' ``--coordinator``,
    ``--num_processes``, ``--process_id``) over JAX's environment variables; left unset,
    JAX detects SLURM, Open MPI and Cloud TPU itself. CPU processes exchange collectives
    through gloo (the default CPU backend has none across processes).
    """
    if jax.distributed.is_initialized():
        return True
    if enabled is False:
        return False
    environ = os.environ if environ is None else environ
    group = ProcessGroup.from_environ(environ).merged(flags or ProcessGroup(None, None, None))
    group.check()
    if enabled is None:
        cluster = "flags" if group.coordinator_address else detect_cluster(environ)
        if cluster is None:
            return False
        logger.info("multi-process launcher detected (%s): jax.distributed.initialize()", cluster)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=group.coordinator_address,
        num_processes=group.num_processes,
        process_id=group.process_id,
    )
    return True
