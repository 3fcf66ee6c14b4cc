"""Everything a run builds once from its config: the policy, tokenizer, data, prompts, rewards.

`setup_run` turns an `ExperimentConfig` into a `RunSetup` of immutable pieces (the data
iterator, which moves, is made by the loop from its checkpointed position). The training
loop, in-training evaluation and scripts/eval.py all use it, and all sample through its
`Policy` and score through `rollout.rollout`, so evaluation sees exactly the training
prompts, sampler and verifiers.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from rlvr_jax.config import ExperimentConfig
from rlvr_jax.config_builder import ConfigError
from rlvr_jax.markers import Markers
from rlvr_jax.models import Decoder, load_decoder_config, load_tokenizer, resolve_checkpoint
from rlvr_jax.models.gguf_native import gguf_source, with_gguf_kernels
from rlvr_jax.models.hf_weights import load_hf_params
from rlvr_jax.models.lora import lora_scale
from rlvr_jax.models.quantization import quantize_leaf, quantizes
from rlvr_jax.parallel import batch_sharding
from rlvr_jax.policy import Policy
from rlvr_jax.rewards import RewardSet, build_rewards
from rlvr_jax.sampling import Completions, SamplingConfig, SpecialTokens
from rlvr_jax.tasks import RowIterator, few_shot_examples, load_rows, render_prompts
from rlvr_jax.tasks.prompts import resolve_markers


@dataclasses.dataclass(frozen=True)
class RunSetup:
    exp: ExperimentConfig
    checkpoint_dir: Path  # the local HF directory of model.checkpoint
    policy: Policy
    tokenizer: Any
    special_tokens: SpecialTokens  # the tokenizer's stop and pad ids
    markers: Markers
    examples: tuple[dict, ...]  # few-shot demonstrations
    rewards: RewardSet
    train_rows: tuple[dict, ...]
    eval_rows: tuple[dict, ...]

    @property
    def sampling(self) -> SamplingConfig:
        return self.exp.sampling

    def prompt_ids(self, rows: list[dict]) -> list[list[int]]:
        texts = render_prompts(self.tokenizer, rows, self.exp.prompt, self.markers, self.examples)
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def iterator(self, state: dict | None) -> RowIterator:
        return RowIterator(
            self.train_rows,
            self.exp.rl.prompts_per_step,
            self.exp.data.seed,
            shuffle=self.exp.data.shuffle,
            process_index=jax.process_index(),
            process_count=jax.process_count(),
            state=state,
        )


def special_tokens(
    tokenizer: Any, checkpoint_dir: Path, extra_stops: tuple[int, ...]
) -> SpecialTokens:
    """The tokenizer's stop ids (its EOS and the generation config's end-of-turn ids) and pad
    id (the tokenizer's, else the first stop id, else the first of `extra_stops`)."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    gen_config = checkpoint_dir / "generation_config.json"
    if gen_config.is_file():
        eos = json.loads(gen_config.read_text()).get("eos_token_id")
        ids |= set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    stops = tuple(sorted(ids))
    candidates = [tokenizer.pad_token_id, *stops, *extra_stops]
    pad = next((c for c in candidates if c is not None), None)
    if pad is None:
        raise ValueError(
            f"{checkpoint_dir}: the tokenizer has no pad or EOS token and generation_config.json "
            "names none; set sampling.extra_stop_token_ids"
        )
    return SpecialTokens(stop_token_ids=stops, pad_token_id=pad)


def setup_run(exp: ExperimentConfig, mesh: Mesh) -> RunSetup:
    cache_dir = exp.model.cache_dir or None
    checkpoint_dir = resolve_checkpoint(exp.model.checkpoint, cache_dir)
    cfg = load_decoder_config(checkpoint_dir)
    tokenizer = load_tokenizer(checkpoint_dir)
    quantization = exp.model.quantization
    transform = (
        functools.partial(quantize_leaf, cfg=quantization) if quantizes(quantization) else None
    )
    params = load_hf_params(checkpoint_dir, cfg, exp.model.dtype, transform)  # quantized as read
    if exp.model.quantization.format == "gguf":
        source = gguf_source(exp.model.checkpoint)
        if source is None:
            raise ConfigError(
                f"model.quantization.format='gguf' keeps a GGUF file's blocks; "
                f"model.checkpoint={exp.model.checkpoint!r} is not a .gguf file"
            )
        params = with_gguf_kernels(params, source, cfg)
    policy = Policy.create(
        Decoder(
            cfg,
            lora_scale=lora_scale(exp.lora),
            row_sharding=batch_sharding(mesh),
            scan_layers=exp.model.scan_layers,
        ),
        params,
        exp.rl.trainable,
        exp.lora,
        mesh,
        has_reference=exp.rl.beta > 0,
    )
    markers = resolve_markers(exp.prompt, exp.model.checkpoint)
    train_rows = tuple(load_rows(exp.data, "train"))
    eval_rows = tuple(load_rows(exp.data, "eval")) if exp.data.eval_split else ()
    examples = tuple(few_shot_examples(train_rows, exp.prompt))
    if exp.data.max_prompt_tokens:
        fits = functools.partial(
            drop_long_prompts, tokenizer=tokenizer, exp=exp, markers=markers, examples=examples
        )
        train_rows, eval_rows = fits(train_rows, "train"), fits(eval_rows, "eval")
    return RunSetup(
        exp=exp,
        checkpoint_dir=checkpoint_dir,
        policy=policy,
        tokenizer=tokenizer,
        special_tokens=special_tokens(tokenizer, checkpoint_dir, exp.sampling.extra_stop_token_ids),
        markers=markers,
        examples=examples,
        rewards=build_rewards(exp.rewards, markers),
        train_rows=train_rows,
        eval_rows=eval_rows,
    )


def drop_long_prompts(
    rows: tuple[dict, ...],
    which: str,
    *,
    tokenizer: Any,
    exp: ExperimentConfig,
    markers: Markers,
    examples: tuple[dict, ...],
) -> tuple[dict, ...]:
    """The rows whose rendered prompt has at most `data.max_prompt_tokens` tokens."""
    if not rows:
        return rows
    texts = render_prompts(tokenizer, list(rows), exp.prompt, markers, examples)
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    kept = tuple(r for r, n in zip(rows, lengths, strict=True) if n <= exp.data.max_prompt_tokens)
    if not kept:
        raise ValueError(
            f"data.max_prompt_tokens={exp.data.max_prompt_tokens}: every {which} prompt is "
            f"longer (shortest {min(lengths)} tokens)"
        )
    if len(kept) < len(rows):
        logging.info(
            "data.max_prompt_tokens=%d: dropped %d of %d %s rows",
            exp.data.max_prompt_tokens,
            len(rows) - len(kept),
            len(rows),
            which,
        )
    return kept


def decode_completions(tokenizer: Any, completions: Completions) -> list[str]:
    """Completion texts: masked tokens only, special tokens (EOS) dropped."""
    ids = np.asarray(completions.ids)
    lengths = np.asarray(completions.lengths)
    return tokenizer.batch_decode(
        [row[:n].tolist() for row, n in zip(ids, lengths, strict=True)], skip_special_tokens=True
    )
