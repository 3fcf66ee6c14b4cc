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


def export_critic(
    critic: Any,
    critic_kind: str,
    lora_cfg: LoraConfig,
    cfg: DecoderConfig,
    out_dir: str | Path,
    base_model: str,
) -> Path:
    """Writes PPO's critic beside the policy's exports (format in `critic_config.json`):

    value_head.safetensors   value_head.weight [D] and value_head.bias [] (float32):
                             V = h . weight + bias on the decoder's final normed hidden
                             state h (HF: `output_hidden_states[-1]` of the model)
    adapter/                 `critic_kind = 'separate'`: the critic backbone's LoRA as a
                             PEFT adapter on `base_model`; 'shared': the hidden state
                             is the trained policy's own (the merged checkpoint's)
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    head = critic["value_head"]
    tensors = {
        "value_head.weight": np.ascontiguousarray(np.asarray(head["kernel"], np.float32)),
        "value_head.bias": np.asarray(head["bias"], np.float32).reshape(()),
    }
    save_file(tensors, str(out_dir / "value_head.safetensors"), metadata={"format": "pt"})
    if critic_kind == "separate":
        export_peft_adapter(critic["lora"], lora_cfg, cfg, out_dir / "adapter", base_model)
    config = {
        "value_head": "V = hidden . value_head.weight + value_head.bias",
        "hidden": "final normed hidden state at the position predicting token t",
        "hidden_size": cfg.hidden_size,
        "backbone": (
            "the base with the PEFT adapter in adapter/"
            if critic_kind == "separate"
            else "the trained policy (merged/ or the base with the policy adapter)"
        ),
        "critic": critic_kind,
    }
    (out_dir / "critic_config.json").write_text(json.dumps(config, indent=2))
    return out_dir
