"""Everything a run builds once from its config: the policy, tokenizer, data, prompts, rewards.

`setup_run` turns an `ExperimentConfig` into a `RunSetup` of immutable pieces (the data
iterator, which moves, is made by the loop from its checkpointed position). Data, prompts
and rewards are per task (`TaskSetup`, one per `ExperimentConfig.tasks`: a single-task
run has one); a mixture's rows carry their task's name in the row field `task`, by which
prompts are rendered and completions scored. The training
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
from rlvr_jax.tasks import few_shot_examples, load_rows, render_prompts
from rlvr_jax.tasks.curriculum import make_source
from rlvr_jax.tasks.mixture import MixtureIterator, Task, mixture_state_tasks
from rlvr_jax.tasks.prompts import resolve_markers

TASK_FIELD = "task"  # the row field naming a mixture row's task


@dataclasses.dataclass(frozen=True)
class TaskSetup:
    """One task's config, prompt pieces, bound rewards and rows."""

    task: Task
    markers: Markers
    examples: tuple[dict, ...]  # few-shot demonstrations
    rewards: RewardSet
    train_rows: tuple[dict, ...]
    eval_rows: tuple[dict, ...]

    @property
    def name(self) -> str:
        return self.task.name


@dataclasses.dataclass(frozen=True)
class RunSetup:
    exp: ExperimentConfig
    checkpoint_dir: Path  # the local HF directory of model.checkpoint
    policy: Policy
    tokenizer: Any
    special_tokens: SpecialTokens  # the tokenizer's stop and pad ids
    tasks: tuple[TaskSetup, ...]  # one per ExperimentConfig.tasks, in that order

    @property
    def sampling(self) -> SamplingConfig:
        return self.exp.sampling

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tasks)

    @property
    def only_task(self) -> TaskSetup:
        """The task of a single-task run (a mixture has several: use `tasks`)."""
        if len(self.tasks) != 1:
            raise ValueError(f"this run mixes tasks {list(self.task_names)}: use RunSetup.tasks")
        return self.tasks[0]

    @property
    def markers(self) -> Markers:
        return self.only_task.markers

    @property
    def rewards(self) -> RewardSet:
        return self.only_task.rewards

    @property
    def train_rows(self) -> tuple[dict, ...]:
        return self.only_task.train_rows

    @property
    def eval_rows(self) -> tuple[dict, ...]:
        return self.only_task.eval_rows

    @property
    def has_eval(self) -> bool:
        return any(t.eval_rows for t in self.tasks)

    def task_index(self, row: dict) -> int:
        """The index in `tasks` of the row's task."""
        if len(self.tasks) == 1:
            return 0
        return self.task_names.index(row[TASK_FIELD])

    def prompt_texts(self, rows: list[dict]) -> list[str]:
        """Each row rendered with its own task's prompt, markers and demonstrations."""
        task_of = [self.task_index(row) for row in rows]
        texts: list[str] = [""] * len(rows)
        for t, task in enumerate(self.tasks):
            idx = [i for i, owner in enumerate(task_of) if owner == t]
            if not idx:
                continue
            rendered = render_prompts(
                self.tokenizer,
                [rows[i] for i in idx],
                task.task.prompt,
                task.markers,
                task.examples,
            )
            for i, text in zip(idx, rendered, strict=True):
                texts[i] = text
        return texts

    def prompt_ids(self, rows: list[dict]) -> list[list[int]]:
        return self.tokenizer(self.prompt_texts(rows), add_special_tokens=False)["input_ids"]

    def iterator(self, state: dict | None):
        """The training prompt stream from its checkpointed `state` (None: the start): the
        task's source (epoch order or curriculum) or, for a mixture, the `MixtureIterator`."""
        batch, seed = self.exp.rl.prompts_per_step, self.exp.data.seed
        where = jax.process_index(), jax.process_count()
        if not self.exp.is_mixture:
            return make_source(self.train_rows, self.exp.data, batch, *where, state=state)
        states = mixture_state_tasks(state, self.task_names)
        sources = {
            t.name: make_source(t.train_rows, t.task.data, batch, state=states[t.name])
            for t in self.tasks
        }
        batches = 0 if state is None else int(state["batches"])
        weights = [t.task.weight for t in self.tasks]
        return MixtureIterator(sources, weights, batch, seed, *where, batches=batches)


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


def decoder_for(exp: ExperimentConfig, cfg: Any, mesh: Mesh) -> Decoder:
    """The run's decoder module for the checkpoint's `cfg` (no weights): LoRA scale, rows
    sharded over `mesh`, `model.scan_layers`."""
    return Decoder(
        cfg,
        lora_scale=lora_scale(exp.lora),
        row_sharding=batch_sharding(mesh),
        scan_layers=exp.model.scan_layers,
    )


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
        decoder_for(exp, cfg, mesh),
        params,
        exp.rl.trainable,
        exp.lora,
        mesh,
        has_reference=exp.rl.beta > 0,
    )
    return RunSetup(
        exp=exp,
        checkpoint_dir=checkpoint_dir,
        policy=policy,
        tokenizer=tokenizer,
        special_tokens=special_tokens(tokenizer, checkpoint_dir, exp.sampling.extra_stop_token_ids),
        tasks=tuple(setup_task(task, exp, tokenizer) for task in exp.tasks),
    )


def setup_task(task: Task, exp: ExperimentConfig, tokenizer: Any) -> TaskSetup:
    """A task's rows (tagged with its name in a mixture), prompt pieces and bound rewards."""
    markers = resolve_markers(task.prompt, exp.model.checkpoint)

    def rows(which: str) -> tuple[dict, ...]:
        loaded = load_rows(task.data, which)
        if not exp.is_mixture:
            return tuple(loaded)
        return tuple({**row, TASK_FIELD: task.name} for row in loaded)

    train_rows = rows("train")
    eval_rows = rows("eval") if task.data.eval_split else ()
    examples = tuple(few_shot_examples(train_rows, task.prompt))
    if task.data.max_prompt_tokens:
        fits = functools.partial(
            drop_long_prompts, tokenizer=tokenizer, task=task, markers=markers, examples=examples
        )
        train_rows, eval_rows = fits(train_rows, "train"), fits(eval_rows, "eval")
    return TaskSetup(
        task=task,
        markers=markers,
        examples=examples,
        rewards=build_rewards(task.rewards, markers),
        train_rows=train_rows,
        eval_rows=eval_rows,
    )


def drop_long_prompts(
    rows: tuple[dict, ...],
    which: str,
    *,
    tokenizer: Any,
    task: Task,
    markers: Markers,
    examples: tuple[dict, ...],
) -> tuple[dict, ...]:
    """The rows whose rendered prompt has at most `data.max_prompt_tokens` tokens."""
    if not rows:
        return rows
    limit = task.data.max_prompt_tokens
    texts = render_prompts(tokenizer, list(rows), task.prompt, markers, examples)
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    kept = tuple(r for r, n in zip(rows, lengths, strict=True) if n <= limit)
    if not kept:
        raise ValueError(
            f"data.max_prompt_tokens={limit}: every {which} prompt is "
            f"longer (shortest {min(lengths)} tokens)"
        )
    if len(kept) < len(rows):
        logging.info(
            "data.max_prompt_tokens=%d: dropped %d of %d %s rows",
            limit,
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
