"""Hugging Face safetensors <-> our parameter tree.

`weight_map(cfg)` is the single table from our param paths to HF tensor names; loading
and saving both read it, so a round trip is exact by construction.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import ml_dtypes
import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from rlvr_jax.models.config import DecoderConfig

Params = dict[str, Any]
Path_ = tuple[str, ...]

# Multimodal Gemma 3 checkpoints nest the text decoder under one of these.
_TEXT_PREFIXES = ("model.language_model.", "language_model.model.", "model.")


class CheckpointError(ValueError):
    """A checkpoint's tensors do not match its config (missing tensor, wrong shape)."""


_NP_DTYPES = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16, "float16": np.float16}


def weight_map(cfg: DecoderConfig) -> dict[Path_, tuple[str, bool]]:
    """Our param path -> (HF name without the "model." prefix, stored transposed)."""
    table: dict[Path_, tuple[str, bool]] = {("embed", "embedding"): ("embed_tokens.weight", False)}
    norms = {"input_norm": "input_layernorm"}
    if cfg.gemma_norms:
        norms |= {
            "post_attn_norm": "post_attention_layernorm",
            "pre_mlp_norm": "pre_feedforward_layernorm",
            "post_mlp_norm": "post_feedforward_layernorm",
        }
    else:
        norms["pre_mlp_norm"] = "post_attention_layernorm"
    for i in range(cfg.num_layers):
        ours, hf = f"layers_{i}", f"layers.{i}"
        for name, hf_name in norms.items():
            table[(ours, name, "scale")] = (f"{hf}.{hf_name}.weight", False)
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            table[(ours, "attn", proj, "kernel")] = (f"{hf}.self_attn.{proj}.weight", True)
        if cfg.qkv_bias:
            for proj in ("q_proj", "k_proj", "v_proj"):
                table[(ours, "attn", proj, "bias")] = (f"{hf}.self_attn.{proj}.bias", False)
        if cfg.qk_norm:
            for norm in ("q_norm", "k_norm"):
                table[(ours, "attn", norm, "scale")] = (f"{hf}.self_attn.{norm}.weight", False)
        for proj in ("gate_proj", "up_proj", "down_proj"):
            table[(ours, "mlp", proj, "kernel")] = (f"{hf}.mlp.{proj}.weight", True)
    table[("final_norm", "scale")] = ("norm.weight", False)
    if not cfg.tie_embeddings:
        table[("lm_head", "kernel")] = ("lm_head.weight", True)
    return table


def _hf_full_name(name: str, prefix: str) -> str:
    return name if name.startswith("lm_head.") else prefix + name


def safetensors_files(ckpt_dir: Path) -> list[Path]:
    index = ckpt_dir / "model.safetensors.index.json"
    if index.exists():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [ckpt_dir / s for s in shards]
    files = sorted(ckpt_dir.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{ckpt_dir}: no *.safetensors file (and no index)")
    return files


def _tensor_locations(files: list[Path]) -> dict[str, Path]:
    where = {}
    for f in files:
        if not f.exists():
            raise FileNotFoundError(f"{f}: shard listed in the index is missing")
        with safe_open(f, framework="numpy") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open has no __iter__)
                where[key] = f
    return where


def _detect_prefix(names: set[str]) -> str:
    for prefix in _TEXT_PREFIXES:
        if prefix + "embed_tokens.weight" in names:
            return prefix
    raise CheckpointError(
        "no tensor named embed_tokens.weight under any of " + str(list(_TEXT_PREFIXES))
    )


def expected_shape(cfg: DecoderConfig, path: Path_) -> tuple[int, ...]:
    d, f, h = cfg.hidden_size, cfg.intermediate_size, cfg.head_dim
    n, k, v = cfg.num_heads * h, cfg.num_kv_heads * h, cfg.vocab_size
    leaf, parent = path[-1], path[-2]
    shapes = {
        "embed": (v, d),
        "lm_head": (d, v),
        "q_proj": (d, n),
        "k_proj": (d, k),
        "v_proj": (d, k),
        "o_proj": (n, d),
        "gate_proj": (d, f),
        "up_proj": (d, f),
        "down_proj": (f, d),
        "q_norm": (h,),
        "k_norm": (h,),
    }
    if leaf == "bias":
        return (shapes[parent][1],)
    return shapes.get(parent, (d,))


def iter_hf_tensors(ckpt_dir: Path, cfg: DecoderConfig, dtype: str) -> Iterator[tuple[Path_, Any]]:
    """Yields (our path, array in our layout and dtype), one tensor at a time."""
    where = _tensor_locations(safetensors_files(ckpt_dir))
    try:
        prefix = _detect_prefix(set(where))
    except CheckpointError as e:
        raise CheckpointError(f"{ckpt_dir}: {e}") from None
    table = weight_map(cfg)
    missing = [
        _hf_full_name(n, prefix) for n, _ in table.values() if _hf_full_name(n, prefix) not in where
    ]
    if missing:
        raise CheckpointError(
            f"{ckpt_dir}: {len(missing)} tensor(s) missing for {cfg.model_type}, "
            f"first: {missing[0]!r}"
        )
    used = {_hf_full_name(n, prefix) for n, _ in table.values()}
    ignored = sorted(set(where) - used)
    if ignored:
        logging.info("%s: ignoring %d tensors (e.g. %s)", ckpt_dir, len(ignored), ignored[0])
    np_dtype = _NP_DTYPES[dtype]
    for path, (name, transposed) in table.items():
        full = _hf_full_name(name, prefix)
        with safe_open(where[full], framework="numpy") as handle:
            array = handle.get_tensor(full)
        if transposed:
            array = array.T
        expected = expected_shape(cfg, path)
        if array.shape != expected:
            raise CheckpointError(
                f"{where[full]}: tensor {full!r} has shape {tuple(array.shape)} "
                f"(in our layout), expected {expected} from config.json"
            )
        # Norm scales stay float32: they are tiny and precision-sensitive.
        target = np.float32 if path[-1] == "scale" else np_dtype
        yield path, np.ascontiguousarray(array.astype(target, copy=False))


def load_hf_params(
    ckpt_dir: str | Path,
    cfg: DecoderConfig,
    dtype: str = "float32",
    transform: Callable[[Path_, np.ndarray], Any] | None = None,
) -> Params:
    """Reads safetensors (single file or sharded) into our nested-dict tree on device.

    `transform(path, array)` replaces each tensor as it is read (e.g. quantizes it), so
    only one full-precision tensor is ever held: a quantized base loads in its own size.
    """
    if dtype not in _NP_DTYPES:
        raise ValueError(f"model.dtype: unsupported {dtype!r}; choose one of {list(_NP_DTYPES)}")
    params: Params = {}
    for path, array in iter_hf_tensors(Path(ckpt_dir), cfg, dtype):
        node = params
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = jnp.asarray(array) if transform is None else transform(path, array)
        del array
    return params


def save_hf_params(params: Params, cfg: DecoderConfig, out_file: str | Path) -> None:
    """Writes our tree as one HF-layout safetensors file (names `model.*`, `lm_head.*`)."""
    tensors = {}
    for path, (name, transposed) in weight_map(cfg).items():
        node = params
        for key in path:
            node = node[key]
        array = np.asarray(node)
        tensors[_hf_full_name(name, "model.")] = np.ascontiguousarray(
            array.T if transposed else array
        )
    save_file(tensors, str(out_file), metadata={"format": "pt"})
