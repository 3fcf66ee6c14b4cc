"""A Hugging Face fast tokenizer rebuilt from a GGUF file's `tokenizer.*` metadata, torch-free.

llama.cpp stores the vocabulary, merges, token types and special ids as metadata, and names its
pre-tokenizer (`tokenizer.ggml.pre`), whose regexes live in llama.cpp's source. We build the
`tokenizers` pipeline that splits text the way llama.cpp does for each supported name.

`smollm` (and the StarCoder family sharing its llama.cpp branch) splits every digit out before
the GPT-2 regex, as the original `tokenizer.json` does with `Digits(individual_digits=True)`.
transformers' own GGUF tokenizer (5.x) uses the plain GPT-2 regex for it, which differs on
whitespace runs before a digit: `"x  12"` is `x ĠĠ 1 2` here and in llama.cpp, `x Ġ Ġ 1 2`
there. The vocabulary confirms the digit split: SmolLM2 has no merge involving a digit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

from rlvr_jax.models.gguf_arch import metadata_value

_CONTROL, _USER_DEFINED = 3, 4  # llama.cpp token types
# tokenizer_config.json name -> GGUF metadata key holding its id.
_SPECIAL_IDS = {
    "bos_token": "tokenizer.ggml.bos_token_id",
    "eos_token": "tokenizer.ggml.eos_token_id",
    "unk_token": "tokenizer.ggml.unknown_token_id",
    "pad_token": "tokenizer.ggml.padding_token_id",
}


def _gpt2_split() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)


def _digits_then_gpt2_split() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), _gpt2_split()])


# `tokenizer.ggml.pre` -> pre-tokenizer reproducing llama.cpp's regexes for it.
_PRE_TOKENIZERS: dict[str, Callable[[], pre_tokenizers.PreTokenizer]] = {
    "gpt2": _gpt2_split,
    "smollm": _digits_then_gpt2_split,
    "starcoder": _digits_then_gpt2_split,
    "refact": _digits_then_gpt2_split,
    "codeshell": _digits_then_gpt2_split,
}


def _post_processor(
    meta: Mapping[str, Any], tokens: list[str], source: str
) -> processors.PostProcessor:
    """Adds BOS/EOS around each sequence when the file asks for it."""
    bos_id = meta.get("tokenizer.ggml.bos_token_id")
    eos_id = meta.get("tokenizer.ggml.eos_token_id")
    before = [bos_id] if meta.get("tokenizer.ggml.add_bos_token", False) else []
    after = [eos_id] if meta.get("tokenizer.ggml.add_eos_token", False) else []
    if None in before + after:
        raise ValueError(f"{source}: tokenizer.ggml.add_bos/eos_token is set without its id")
    if not before and not after:
        return processors.ByteLevel(trim_offsets=False)

    def template(type_id: int, seq: str) -> list[str]:
        return (
            [f"{tokens[i]}:{type_id}" for i in before]
            + [f"${seq}:{type_id}"]
            + [f"{tokens[i]}:{type_id}" for i in after]
        )

    return processors.TemplateProcessing(
        single=template(0, "A"),
        pair=template(0, "A") + template(1, "B"),
        special_tokens=sorted({(tokens[i], i) for i in before + after}),
    )


def build_gguf_tokenizer(meta: Mapping[str, Any], source: str) -> Tokenizer:
    """The byte-level BPE tokenizer a GGUF's metadata describes (`tokenizer.ggml.model == gpt2`)."""
    kind = metadata_value(meta, "tokenizer.ggml.model", source)
    if kind != "gpt2":
        raise ValueError(
            f"{source}: tokenizer model {kind!r} is not supported "
            "(supported: 'gpt2', byte-level BPE)"
        )
    pre = meta.get("tokenizer.ggml.pre", "default")
    if pre not in _PRE_TOKENIZERS:
        raise ValueError(
            f"{source}: pre-tokenizer {pre!r} is not supported "
            f"(supported: {sorted(_PRE_TOKENIZERS)})"
        )
    tokens: list[str] = metadata_value(meta, "tokenizer.ggml.tokens", source)
    merges = [tuple(m.split(" ")) for m in metadata_value(meta, "tokenizer.ggml.merges", source)]
    if any(len(m) != 2 for m in merges):
        raise ValueError(
            f"{source}: a tokenizer.ggml.merges entry is not two space-separated parts"
        )
    bpe = models.BPE(
        vocab={token: i for i, token in enumerate(tokens)},
        merges=merges,
        continuing_subword_prefix="",
        end_of_word_suffix="",
        fuse_unk=False,
        byte_fallback=False,
    )
    tokenizer = Tokenizer(bpe)
    tokenizer.pre_tokenizer = _PRE_TOKENIZERS[pre]()
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = _post_processor(meta, tokens, source)
    # Control tokens (<|im_start|>) and user-defined ones (<think>) match whole in raw text.
    types = meta.get("tokenizer.ggml.token_type") or [0] * len(tokens)
    typed = list(zip(tokens, types, strict=True))
    tokenizer.add_special_tokens(
        [AddedToken(t, normalized=False, special=True) for t, k in typed if k == _CONTROL]
    )
    tokenizer.add_tokens(
        [AddedToken(t, normalized=False, special=False) for t, k in typed if k == _USER_DEFINED]
    )
    return tokenizer


def gguf_tokenizer_config(meta: Mapping[str, Any], model_max_length: int) -> dict[str, Any]:
    """`tokenizer_config.json`: special tokens, BOS/EOS flags and the chat template."""
    tokens = meta["tokenizer.ggml.tokens"]
    config: dict[str, Any] = {"tokenizer_class": "PreTrainedTokenizerFast"}
    for name, key in _SPECIAL_IDS.items():
        if key in meta:
            config[name] = tokens[meta[key]]
    config |= {
        "add_bos_token": bool(meta.get("tokenizer.ggml.add_bos_token", False)),
        "add_eos_token": bool(meta.get("tokenizer.ggml.add_eos_token", False)),
        "clean_up_tokenization_spaces": False,
        "model_max_length": model_max_length,
    }
    if "tokenizer.chat_template" in meta:
        config["chat_template"] = meta["tokenizer.chat_template"]
    return config
