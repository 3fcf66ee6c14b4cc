"""Export: the merged checkpoint in transformers and the PEFT adapter in peft give our logits."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hf_reference import hf_logits, left_padded_batch, save_tiny_hf

from rlvr_jax.export import export_merged, export_peft_adapter
from rlvr_jax.models import Decoder, load_decoder_config
from rlvr_jax.models.hf_weights import load_hf_params
from rlvr_jax.models.lora import LoraConfig, init_lora, lora_scale

LORA = LoraConfig(
    rank=3, alpha=5.0, targets=("q", "k", "v", "o", "gate", "up", "down"), rslora=False
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny Qwen2 base (biases, tied head) and a LoRA tree with non-zero B."""
    base_dir = tmp_path_factory.mktemp("base")
    save_tiny_hf("qwen2", base_dir)
    cfg = load_decoder_config(base_dir)
    params = load_hf_params(base_dir, cfg)
    lora = init_lora(params, LORA, jax.random.key(1))
    keys = iter(jax.random.split(jax.random.key(2), 1000))
    lora = jax.tree.map(lambda x: x + 0.2 * jax.random.normal(next(keys), x.shape), lora)
    model = Decoder(cfg, lora_scale=lora_scale(LORA))
    tokens, mask, positions = left_padded_batch()
    ours, _ = model.apply({"params": params, "lora": lora}, tokens, positions, mask)
    return base_dir, cfg, params, lora, np.asarray(ours), (tokens, mask, positions)


def test_merged_checkpoint_loads_in_transformers(trained, tmp_path):
    import transformers as tf

    base_dir, cfg, params, lora, ours, batch = trained
    out = export_merged(params, lora, LORA, cfg, tmp_path / "merged", base_dir)
    hf_model = tf.AutoModelForCausalLM.from_pretrained(out, attn_implementation="eager").eval()
    ref = hf_logits(hf_model, *batch)
    real = batch[1].astype(bool)
    assert np.abs(ours - ref)[real].max() <= 1e-4


def test_peft_adapter_loads_on_the_base(trained, tmp_path):
    import transformers as tf

    peft = pytest.importorskip("peft")
    base_dir, cfg, params, lora, ours, batch = trained
    adapter = export_peft_adapter(lora, LORA, cfg, tmp_path / "adapter", str(base_dir))
    base = tf.AutoModelForCausalLM.from_pretrained(base_dir, attn_implementation="eager")
    model = peft.PeftModel.from_pretrained(base, adapter).eval()
    ref = hf_logits(model, *batch)
    real = batch[1].astype(bool)
    assert np.abs(ours - ref)[real].max() <= 1e-4
    # And the adapter really changes the model: it is not a no-op export.
    plain = hf_logits(tf.AutoModelForCausalLM.from_pretrained(base_dir).eval(), *batch)
    assert np.abs(plain - ref)[real].max() > 1e-2
