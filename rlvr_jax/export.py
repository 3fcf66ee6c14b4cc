"""Export a trained policy for transformers, PEFT and vLLM.

* `export_peft_adapter`: `adapter_config.json` + `adapter_model.safetensors` in PEFT's
  LoRA format (`peft.PeftModel.from_pretrained(base, dir)` loads it);
* `export_merged`: the base with the adapters folded in, as a plain HF checkpoint
  directory (config and tokenizer copied from the base checkpoint).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from rlvr_jax.models.config import DecoderConfig
from rlvr_jax.models.hf_weights import Params, weight_map
from rlvr_jax.models.loading import save_hf_checkpoint
from rlvr_jax.models.lora import LoraConfig, lora_scale, merge_lora


def _adapters(lora: Any, path: tuple[str, ...] = ()):
    """Yields (module path, {'a', 'b'}) for every adapter in the LoRA tree."""
    if isinstance(lora, dict) and set(lora) == {"a", "b"}:
        yield path, lora
        return
    for name, child in lora.items():
        yield from _adapters(child, (*path, name))


def export_peft_adapter(
    lora: Any, lora_cfg: LoraConfig, cfg: DecoderConfig, out_dir: str | Path, base_model: str
) -> Path:
    """Writes the LoRA tree as a PEFT adapter for the HF model `base_model`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    hf_names = weight_map(cfg)
    tensors, modules = {}, set()
    for path, adapter in _adapters(lora):
        hf_weight, _ = hf_names[(*path, "kernel")]  # e.g. layers.0.self_attn.q_proj.weight
        module = "base_model.model.model." + hf_weight.removesuffix(".weight")
        modules.add(path[-1])
        # Ours: y = x @ a @ b with a [in, r], b [r, out]. PEFT: A [r, in], B [out, r].
        tensors[f"{module}.lora_A.weight"] = np.ascontiguousarray(np.asarray(adapter["a"]).T)
        tensors[f"{module}.lora_B.weight"] = np.ascontiguousarray(np.asarray(adapter["b"]).T)
    save_file(tensors, str(out_dir / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "r": lora_cfg.rank,
        "lora_alpha": lora_cfg.alpha,
        "use_rslora": lora_cfg.rslora,
        "target_modules": sorted(modules),
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
    }
    (out_dir / "adapter_config.json").write_text(json.dumps(config, indent=2))
    return out_dir


def export_merged(
    params: Params,
    lora: Any | None,
    lora_cfg: LoraConfig | None,
    cfg: DecoderConfig,
    out_dir: str | Path,
    base_checkpoint_dir: str | Path,
) -> Path:
    """Writes base (+ merged LoRA) as an HF checkpoint directory."""
    if lora is not None:
        params = merge_lora(params, lora, lora_scale(lora_cfg))
    return save_hf_checkpoint(params, cfg, out_dir, source_dir=base_checkpoint_dir)
