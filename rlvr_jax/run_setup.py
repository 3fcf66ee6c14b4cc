"""Everything a run builds once from its config: model, tokenizer, data, prompts, rewards.

`setup_run` turns an `ExperimentConfig` into a `RunSetup` of immutable pieces (the data
iterator, which moves, is made by the loop from its checkpointed position). Both the
training loop and scripts/eval.py use it, so evaluation sees exactly the training prompts.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from rlvr_jax.config import ExperimentConfig
from rlvr_jax.markers import Markers
from rlvr_jax.models import Decoder, load_decoder_config, load_tokenizer, resolve_checkpoint
from rlvr_jax.models.hf_weights import load_hf_params
from rlvr_jax.models.lora import init_lora, lora_scale
from rlvr_jax.rewards import RewardSet, build_rewards
from rlvr_jax.rl.train_step import place_params
from rlvr_jax.sampling import Completions, SamplingConfig
from rlvr_jax.tasks import RowIterator, few_shot_examples, load_rows, render_prompts
from rlvr_jax.tasks.prompts import resolve_markers

_LORA_RNG = 1


@dataclasses.dataclass(frozen=True)
class RunSetup:
    exp: ExperimentConfig
    checkpoint_dir: Path  # the local HF directory of model.checkpoint
    model: Decoder
    tokenizer: Any
    base_params: Any  # the pretrained params, placed on the mesh
    markers: Markers
    examples: tuple[dict, ...]  # few-shot demonstrations
    rewards: RewardSet
    sampling: SamplingConfig
    train_rows: tuple[dict, ...]
    eval_rows: tuple[dict, ...]

    @property
    def lora_mode(self) -> bool:
        return self.exp.rl.trainable == "lora"

    def initial_trainable(self, rng: jax.Array) -> Any:
        """The LoRA tree (B = 0, so the policy starts as the base), or the full params."""
        if self.lora_mode:
            return init_lora(self.base_params, self.exp.lora, jax.random.fold_in(rng, _LORA_RNG))
        # A copy: the train step donates the state, and the base stays the KL reference.
        return jax.tree.map(jnp.copy, self.base_params)

    @property
    def frozen_base(self) -> Any:
        """What the train step holds fixed: the base with LoRA, nothing in full mode."""
        return self.base_params if self.lora_mode else None

    @property
    def reference(self) -> Any:
        """The KL reference for the scorer: the base (LoRA absent), or the initial params."""
        if self.lora_mode or self.exp.rl.beta > 0:
            return self.base_params
        return None

    def policy_params(self, trainable: Any) -> tuple[Any, Any | None]:
        """(params, lora) for the sampler from the train state's trainable tree."""
        if self.lora_mode:
            return self.base_params, trainable
        return trainable, None

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


def stop_token_ids(tokenizer: Any, checkpoint_dir: Path, extra: tuple[int, ...]) -> tuple[int, ...]:
    """The tokenizer's EOS, the generation config's EOS ids (end-of-turn), and `extra`."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    gen_config = checkpoint_dir / "generation_config.json"
    if gen_config.is_file():
        eos = json.loads(gen_config.read_text()).get("eos_token_id")
        ids |= set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    return tuple(sorted(ids | set(extra)))


def setup_run(exp: ExperimentConfig, mesh: Mesh) -> RunSetup:
    cache_dir = exp.model.cache_dir or None
    checkpoint_dir = resolve_checkpoint(exp.model.checkpoint, cache_dir)
    cfg = load_decoder_config(checkpoint_dir)
    tokenizer = load_tokenizer(checkpoint_dir)
    base = place_params(load_hf_params(checkpoint_dir, cfg, exp.model.dtype), mesh)
    markers = resolve_markers(exp.prompt, exp.model.checkpoint)
    train_rows = tuple(load_rows(exp.data, "train"))
    eval_rows = tuple(load_rows(exp.data, "eval")) if exp.data.eval_split else ()
    stops = stop_token_ids(tokenizer, checkpoint_dir, exp.sampling.extra_stop_token_ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    s = exp.sampling
    sampling = SamplingConfig(
        max_new_tokens=s.max_new_tokens,
        temperature=s.temperature,
        top_k=s.top_k,
        top_p=s.top_p,
        num_samples=s.num_samples,
        stop_token_ids=stops,
        pad_token_id=pad,
        prompt_buckets=s.prompt_buckets,
    )
    return RunSetup(
        exp=exp,
        checkpoint_dir=checkpoint_dir,
        model=Decoder(cfg, lora_scale=lora_scale(exp.lora)),
        tokenizer=tokenizer,
        base_params=base,
        markers=markers,
        examples=tuple(few_shot_examples(train_rows, exp.prompt)),
        rewards=build_rewards(exp.rewards, markers),
        sampling=sampling,
        train_rows=train_rows,
        eval_rows=eval_rows,
    )


def decode_completions(tokenizer: Any, completions: Completions) -> list[str]:
    """Completion texts: masked tokens only, special tokens (EOS) dropped."""
    ids = np.asarray(completions.ids)
    lengths = np.asarray(completions.lengths)
    return tokenizer.batch_decode(
        [row[:n].tolist() for row, n in zip(ids, lengths, strict=True)], skip_special_tokens=True
    )
