"""Weight-only quantization of the frozen base (`model.quantization`): int8 and NF4.

A quantized projection keeps its param name: `.../q_proj/kernel` holds a `QuantizedKernel`
(a pytree of its codes and scales) instead of a float array, and `Dense` dequantizes it
inside the call that uses it, so LoRA, the sampler, the train step and the sharding rules
see the same tree paths. Only the seven projections (attention q/k/v/o, MLP gate/up/down)
are quantized; embeddings, norms, biases and the LM head stay in `model.dtype`. LoRA
factors are float32 as always.

    int8  per output channel (column j of the [in, out] kernel):
          s_j = max_i |W_ij| / 127,  q_ij = round(W_ij / s_j) in [-127, 127],  W ~ q s
    nf4   QLoRA's 4-bit NormalFloat (Dettmers et al., 2023): blocks of `block_size`
          consecutive input rows of each column; a_bj = max |W| over block b of column j;
          q = the nearest of the 16 NF4 levels to W / a; two codes per byte. With
          `double_quant` the block absmaxes are themselves stored as uint8 with one float
          scale per column (a_bj ~ c_bj t_j, t_j = max_b a_bj / 255).

    gguf  the GGUF file's own Q4_1 blocks (llama.cpp: 32 weights share a scale d and a
          minimum m, w = d q + m, q in 0..15), kept as the file stores them, so the model
          is the one llama.cpp serves (`gguf_native.py`); other tensor types load as float.

Bytes per weight: float32 4, int8 1 (+ 4 / in for the scales), nf4 0.5 + 4 / block_size
(0.5 + 1 / block_size with double quantization): 0.14x float32 at block 64; q4_1 as held
here 0.5 + 8 / 32 (d and m in float32; the file's float16 pair is 0.625 bytes per weight).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any
FORMATS = ("none", "int8", "nf4", "gguf")  # gguf: the file's own Q4_1 blocks (gguf_native.py)
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# The 16 NF4 levels of QLoRA / bitsandbytes: quantiles of N(0, 1), scaled to [-1, 1].
NF4_LEVELS = np.array(
    [
        -1.0,
        -0.6961928009986877,
        -0.5250730514526367,
        -0.39491748809814453,
        -0.28444138169288635,
        -0.18477343022823334,
        -0.09105003625154495,
        0.0,
        0.07958029955625534,
        0.16093020141124725,
        0.24611230194568634,
        0.33791524171829224,
        0.44070982933044434,
        0.5626170039176941,
        0.7229568362236023,
        1.0,
    ],
    np.float32,
)


@dataclasses.dataclass(frozen=True)
class QuantizationConfig:
    """`config.model.quantization`."""

    format: str  # 'none' | 'int8' | 'nf4' | 'gguf' (keep a GGUF file's Q4_1 blocks)
    block_size: int  # nf4: input rows per absmax block (even, divides every kernel's rows)
    double_quant: bool  # nf4: store the block absmaxes as uint8 with a per-column scale

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(
                f"model.quantization.format: unknown {self.format!r}; choose one of {FORMATS}"
            )
        if self.block_size < 2 or self.block_size % 2:
            raise ValueError(
                f"model.quantization.block_size must be even and >= 2, got {self.block_size}"
            )


@flax.struct.dataclass
class QuantizedKernel:
    """A quantized [in, out] kernel (module docstring); `dequantize` gives the float one."""

    codes: jax.Array  # int8 [in, out] | nf4: uint8 [in / 2, out], rows 2k (low) and 2k+1
    # | q4_1: uint8 [out, in / 2], GGUF's blocks of 32 (16 low nibbles, then 16 high)
    scales: jax.Array  # int8: f32 [out] | nf4: f32 [in / bs, out] or uint8 (double quant)
    # | q4_1: f32 [out, in / 32], each block's d
    scale_scales: jax.Array | None  # nf4 double quant: f32 [out]; else None
    offsets: jax.Array | None  # q4_1: f32 [out, in / 32], each block's m; else None
    format: str = flax.struct.field(pytree_node=False)
    shape: tuple[int, int] = flax.struct.field(pytree_node=False)  # the float kernel's

    @property
    def dtype(self):
        return jnp.float32

    def dequantize(self, dtype=jnp.float32) -> jax.Array:
        if self.format == "int8":
            return (self.codes.astype(jnp.float32) * self.scales[None, :]).astype(dtype)
        if self.format == "q4_1":  # llama.cpp: w = d q + m per block of 32
            d_in, d_out = self.shape
            blocks = self.codes.reshape(d_out, d_in // 32, 16)
            q = jnp.concatenate([blocks & 0x0F, blocks >> 4], axis=-1).astype(jnp.float32)
            w = q * self.scales[..., None] + self.offsets[..., None]
            return w.reshape(d_out, d_in).T.astype(dtype)
        low = self.codes & 0x0F
        high = self.codes >> 4
        d_in, d_out = self.shape
        codes = jnp.stack([low, high], axis=1).reshape(d_in, d_out)
        values = jnp.asarray(NF4_LEVELS)[codes.astype(jnp.int32)]
        absmax = self.scales.astype(jnp.float32)
        if self.scale_scales is not None:
            absmax = absmax * self.scale_scales[None, :]
        block = d_in // absmax.shape[0]
        return (values * jnp.repeat(absmax, block, axis=0)).astype(dtype)

    def leaf_specs(self, kernel_spec: tuple) -> QuantizedKernel:
        """The partition of each stored array for the float kernel's `(in_axes, out_axes)`
        spec: codes and block scales follow the dims they index (q4_1 stores [out, in])."""
        rows, cols = (tuple(kernel_spec) + (None, None))[:2]
        per_column = (cols,)
        if self.format == "q4_1":
            return self.replace(
                codes=(cols, rows), scales=(cols, rows), offsets=(cols, rows), scale_scales=None
            )
        if self.format == "int8":
            return self.replace(codes=(rows, cols), scales=per_column)
        scale_scales = None if self.scale_scales is None else per_column
        return self.replace(codes=(rows, cols), scales=(rows, cols), scale_scales=scale_scales)

    @property
    def nbytes(self) -> int:
        leaves = [self.codes, self.scales, self.scale_scales, self.offsets]
        return sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in leaves if x is not None)


@jax.jit
def quantize_int8(w: jax.Array) -> QuantizedKernel:
    w = jnp.asarray(w, jnp.float32)
    scales = jnp.max(jnp.abs(w), axis=0) / 127.0
    scales = jnp.where(scales > 0, scales, 1.0)
    codes = jnp.clip(jnp.round(w / scales[None, :]), -127, 127).astype(jnp.int8)
    return QuantizedKernel(codes, scales, None, None, "int8", tuple(w.shape))


# Jitted: XLA fuses the [in, out, 16] level search into the argmin (eager, it would be
# materialized: 880 MB for one 8960 x 1536 kernel).
@functools.partial(jax.jit, static_argnames=("block_size", "double_quant"))
def quantize_nf4(w: jax.Array, block_size: int, double_quant: bool) -> QuantizedKernel:
    w = jnp.asarray(w, jnp.float32)
    d_in, d_out = w.shape
    if d_in % block_size:
        raise ValueError(
            f"model.quantization.block_size={block_size} does not divide a kernel's {d_in} rows"
        )
    blocks = w.reshape(d_in // block_size, block_size, d_out)
    absmax = jnp.max(jnp.abs(blocks), axis=1)  # [in / bs, out]
    absmax = jnp.where(absmax > 0, absmax, 1.0)
    scale_scales = None
    if double_quant:
        scale_scales = jnp.max(absmax, axis=0) / 255.0
        absmax_codes = jnp.clip(jnp.round(absmax / scale_scales[None, :]), 1, 255)
        absmax = absmax_codes * scale_scales[None, :]  # quantize with the stored scales
        stored_scales = absmax_codes.astype(jnp.uint8)
    normalized = (blocks / absmax[:, None, :]).reshape(d_in, d_out)
    levels = jnp.asarray(NF4_LEVELS)
    codes = jnp.argmin(jnp.abs(normalized[..., None] - levels), axis=-1).astype(jnp.uint8)
    pairs = codes.reshape(d_in // 2, 2, d_out)
    packed = (pairs[:, 0] | (pairs[:, 1] << 4)).astype(jnp.uint8)
    scales = stored_scales if double_quant else absmax
    return QuantizedKernel(packed, scales, scale_scales, None, "nf4", (d_in, d_out))


def quantize_kernel(w: jax.Array, cfg: QuantizationConfig) -> QuantizedKernel:
    """int8 or nf4 (gguf kernels come from the file: `gguf_native.py`)."""
    if cfg.format == "int8":
        return quantize_int8(w)
    if cfg.format == "nf4":
        return quantize_nf4(w, cfg.block_size, cfg.double_quant)
    raise ValueError(f"model.quantization.format = {cfg.format!r} quantizes nothing")


def _is_projection(path: tuple[str, ...]) -> bool:
    return len(path) >= 2 and path[-1] == "kernel" and path[-2] in PROJECTIONS


def quantizes(cfg: QuantizationConfig) -> bool:
    """Whether `quantize_leaf` changes anything (gguf: the loader brings the file's blocks)."""
    return cfg.format not in ("none", "gguf")


def quantize_leaf(path: tuple[str, ...], leaf: Any, cfg: QuantizationConfig) -> Any:
    """The param at `path`, quantized if it is a projection kernel (`load_hf_params`'s
    `transform`: the base is quantized tensor by tensor as it is read)."""
    if quantizes(cfg) and _is_projection(path):
        return quantize_kernel(leaf, cfg)
    return jnp.asarray(leaf)


def quantize_params(params: PyTree, cfg: QuantizationConfig) -> PyTree:
    """`params` with every projection kernel quantized (`cfg.format = 'none'`: unchanged)."""
    if not quantizes(cfg):
        return params

    def visit(node: Any, path: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            return {k: visit(v, (*path, k)) for k, v in node.items()}
        return quantize_leaf(path, node, cfg)

    return visit(params, ())


def dequantize_params(params: PyTree, dtype=jnp.float32) -> PyTree:
    """A plain float tree: every `QuantizedKernel` dequantized (export, reference checks)."""

    def visit(node: Any) -> Any:
        if isinstance(node, QuantizedKernel):
            return node.dequantize(dtype)
        if isinstance(node, dict):
            return {k: visit(v) for k, v in node.items()}
        return node

    return visit(params)


def kernel_bytes(params: PyTree) -> int:
    """Bytes of the projection kernels (quantized or not): what quantization shrinks."""
    total = 0

    def visit(node: Any, path: tuple[str, ...]) -> None:
        nonlocal total
        if isinstance(node, QuantizedKernel):
            total += node.nbytes
        elif isinstance(node, dict):
            for k, v in node.items():
                visit(v, (*path, k))
        elif _is_projection(path):
            total += int(np.prod(node.shape)) * np.dtype(node.dtype).itemsize

    visit(params, ())
    return total
