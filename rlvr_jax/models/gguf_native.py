"""A GGUF file's own 4-bit blocks as the frozen base (`model.quantization.format='gguf'`).

The default path dequantizes a GGUF checkpoint once into a float HF directory (gguf.py).
With this format the projection kernels are read again from the file and kept as its Q4_1
blocks (`QuantizedKernel` format 'q4_1'): the codes as stored, each block's d and m in
float32, rows of q/k un-permuted like the float path (whole rows move, blocks stay
intact). Every other tensor (embeddings, norms, a Q8_0 embedding) comes from the float
directory. Only Q4_1 projections are kept; a projection of another type is an error
naming it (dequantize it with `format='none'`, or add its block layout here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gguf
import jax
import jax.numpy as jnp
import numpy as np

from rlvr_jax.models.config import DecoderConfig
from rlvr_jax.models.gguf import (
    _hf_shape,
    _plan,
    open_gguf,
    read_gguf_metadata,
    undo_rotary_permute,
)
from rlvr_jax.models.gguf_arch import GGUF_ARCHS, metadata_value
from rlvr_jax.models.hf_weights import weight_map
from rlvr_jax.models.quantization import PROJECTIONS, QuantizedKernel

PyTree = Any
Q4_1_BLOCK_BYTES = 20  # float16 d, float16 m, 16 bytes of two 4-bit codes each


def gguf_source(checkpoint: str) -> Path | None:
    """The GGUF file `model.checkpoint` names (a .gguf path or the SmolLM2 preset), or None."""
    if checkpoint == "smollm2-135m-instruct":
        from rlvr_jax.models.gguf import locate_smollm2_gguf

        return locate_smollm2_gguf()
    path = Path(checkpoint).expanduser()
    return path if path.suffix == ".gguf" else None


def q4_1_kernel(data: np.ndarray, shape_out_in: tuple[int, int], rotary_heads: int | None):
    """A `QuantizedKernel` [in, out] from a Q4_1 tensor's raw rows [out, blocks * 20]."""
    d_out, d_in = shape_out_in
    blocks = np.asarray(data).reshape(d_out, d_in // 32, Q4_1_BLOCK_BYTES)
    d = blocks[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    m = blocks[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float32)
    codes = blocks[..., 4:].reshape(d_out, d_in // 2)
    if rotary_heads is not None:
        codes, d, m = (undo_rotary_permute(x, rotary_heads) for x in (codes, d, m))
    return QuantizedKernel(
        jnp.asarray(codes), jnp.asarray(d), None, jnp.asarray(m), "q4_1", (d_in, d_out)
    )


def with_gguf_kernels(params: PyTree, source: Path, cfg: DecoderConfig) -> PyTree:
    """A copy of `params` with every projection kernel the file's own Q4_1 blocks."""
    params = jax.tree.map(lambda x: x, params)  # new containers: the caller's tree is kept
    reader = open_gguf(source)
    meta = read_gguf_metadata(reader)
    arch = GGUF_ARCHS[metadata_value(meta, "general.architecture", str(source))]
    config = arch.build_config(meta, {t.name: _hf_shape(t) for t in reader.tensors}, str(source))
    ours = {hf: path for path, (hf, _) in weight_map(cfg).items() if path[-1] == "kernel"}
    replaced = 0
    for entry in _plan(reader.tensors, arch, config, str(source)):
        path = ours.get(entry.hf_name.removeprefix("model."))
        if path is None or path[-2] not in PROJECTIONS:
            continue
        t = entry.tensor
        if t.tensor_type != gguf.GGMLQuantizationType.Q4_1:
            raise ValueError(
                f"model.quantization.format='gguf': {source}: {t.name} is "
                f"{t.tensor_type.name}, only Q4_1 blocks are kept (use format='none')"
            )
        node = params
        for name in path[:-1]:
            node = node[name]
        node["kernel"] = q4_1_kernel(t.data, entry.shape, entry.rotary_heads)
        replaced += 1
    if not replaced:
        raise ValueError(f"model.quantization.format='gguf': {source} has no Q4_1 projection")
    return params
