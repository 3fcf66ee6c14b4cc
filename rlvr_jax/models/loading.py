"""One `model.checkpoint` string -> a local HF directory -> (model, params, tokenizer).

Accepted strings, tried in this order:
  * a preset name (`rlvr_jax.models.presets`: `smollm2-135m-instruct`, `tiny-random-llama`);
  * a path to a `.gguf` file (converted once into a cached HF directory);
  * a local HF directory with `config.json` and `*.safetensors`;
  * a Hugging Face hub id (`Qwen/Qwen2.5-1.5B-Instruct`), downloaded by `huggingface_hub`.
Every route ends in a standard HF directory, so there is one loader to trust.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from rlvr_jax.models.config import DecoderConfig
from rlvr_jax.models.decoder import Decoder
from rlvr_jax.models.hf_weights import Params, load_hf_params, save_hf_params
from rlvr_jax.models.presets import PRESETS

_HUB_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.jinja", "tokenizer*"]
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "generation_config.json",
    "tokenizer.model",
)


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or name.endswith(".gguf")


def resolve_checkpoint(name: str, cache_dir: str | Path | None = None) -> Path:
    """Returns a local HF checkpoint directory for `name` (see module docstring)."""
    if name in PRESETS:
        from rlvr_jax.models.gguf import DEFAULT_CACHE_DIR

        root = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
        return PRESETS[name](root.expanduser())
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise FileNotFoundError(f"model.checkpoint: GGUF file {name!r} does not exist")
        from rlvr_jax.models.gguf import cached_hf_dir_for_gguf

        return cached_hf_dir_for_gguf(path, cache_dir=cache_dir)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"model.checkpoint: {path} has no config.json")
        return path
    if _looks_like_path(name) or path.exists():
        raise FileNotFoundError(
            f"model.checkpoint: {name!r} is neither a directory, a .gguf file, "
            f"nor a preset ({sorted(PRESETS)})"
        )
    from huggingface_hub import snapshot_download  # the network path, for users

    return Path(snapshot_download(name, allow_patterns=_HUB_PATTERNS))


def load_decoder_config(ckpt_dir: str | Path) -> DecoderConfig:
    from transformers import AutoConfig

    config_file = Path(ckpt_dir) / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file} does not exist")
    try:
        return DecoderConfig.from_hf(AutoConfig.from_pretrained(str(ckpt_dir)))
    except (KeyError, ValueError) as e:
        raise ValueError(f"{config_file}: {e}") from e


def load_tokenizer(ckpt_dir: str | Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(ckpt_dir))


def load_model(
    checkpoint: str, dtype: str = "float32", cache_dir: str | Path | None = None
) -> tuple[Decoder, Params, Any]:
    """Loads `(Decoder module, params, tokenizer)` for a checkpoint string."""
    ckpt_dir = resolve_checkpoint(checkpoint, cache_dir)
    cfg = load_decoder_config(ckpt_dir)
    params = load_hf_params(ckpt_dir, cfg, dtype)
    return Decoder(cfg), params, load_tokenizer(ckpt_dir)


def save_hf_checkpoint(
    params: Params, cfg: DecoderConfig, out_dir: str | Path, source_dir: str | Path
) -> Path:
    """Writes `params` as an HF checkpoint; config and tokenizer files come from `source_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    source_dir = Path(source_dir)
    shutil.copy(source_dir / "config.json", out_dir / "config.json")
    for name in _TOKENIZER_FILES:
        if (source_dir / name).is_file():
            shutil.copy(source_dir / name, out_dir / name)
    save_hf_params(params, cfg, out_dir / "model.safetensors")
    return out_dir
