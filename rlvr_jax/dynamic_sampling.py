"""The rollout of one RL step, and DAPO's dynamic sampling (`rl.dynamic_sampling`).

A group whose G samples all got the same reward has zero advantage under every group
baseline: it costs a full forward and backward and teaches nothing. Dynamic sampling (DAPO,
Yu et al., 2025, "over-sample and filter") keeps drawing fresh batches of
`rl.prompts_per_step` prompts, keeping the groups whose rewards vary, until the step holds
`rl.prompts_per_step` of them or `max_rounds` batches were drawn; then the batch is filled
with zero-variance groups (in the order they were drawn) and a warning says so. The train
batch keeps its static shape (B prompts x G samples, the prompt bucket of the longest
prompt), so nothing recompiles; prompts it consumed are gone from the data stream, whose
position (`RowIterator.state`) is checkpointed after the step, so a resume continues it
exactly.

Round k of the step samples with `fold_in(step key, k)` for k >= 1 (round 0 uses the step
key itself, so a step that needs one round draws what plain sampling draws).

Metrics: `dynamic/rounds`, `dynamic/kept_frac` (informative groups / groups drawn),
`dynamic/prompts_consumed`, `dynamic/filled_groups` (zero-variance groups used to fill).
In a multi-process run every process keeps its own `prompts_per_step / num_processes`
groups; the rounds continue while any process lacks some (sampling is one collective).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator

import jax
import numpy as np

from rlvr_jax.config import DynamicSamplingConfig
from rlvr_jax.multihost import any_process, gather_rows
from rlvr_jax.rewards import RewardOutput
from rlvr_jax.rollout import Rollout, rollout
from rlvr_jax.run_setup import RunSetup
from rlvr_jax.sampling import Completions


@dataclasses.dataclass(frozen=True)
class StepRollout:
    """What one RL step sampled: the train batch's rollout and every round's scores."""

    batch: Rollout  # B groups: what the algorithm trains on
    drawn: tuple[Rollout, ...]  # every round, in order (reward metrics describe these)
    metrics: dict[str, float]

    @property
    def drawn_scores(self) -> RewardOutput:
        return concat_scores([r.scores for r in self.drawn])


def informative_groups(rewards_R: np.ndarray, group_size: int) -> np.ndarray:
    """``[B]`` bool: the group's rewards are not all equal (the advantages' ``frac_zero_std``
    rule, exact equality)."""
    r_BG = np.asarray(rewards_R).reshape(-1, group_size)
    return r_BG.max(axis=1) != r_BG.min(axis=1)


def concat_scores(scores: list[RewardOutput]) -> RewardOutput:
    return RewardOutput(
        per_fn={k: np.concatenate([s.per_fn[k] for s in scores]) for k in scores[0].per_fn},
        total=np.concatenate([s.total for s in scores]),
        correct=np.concatenate([s.correct for s in scores]),
        task=np.concatenate([s.task for s in scores]),
    )


def take_scores(scores: RewardOutput, rows: np.ndarray) -> RewardOutput:
    return RewardOutput(
        per_fn={k: v[rows] for k, v in scores.per_fn.items()},
        total=scores.total[rows],
        correct=scores.correct[rows],
        task=scores.task[rows],
    )


def _left_pad_to(x_RP: np.ndarray, width: int, value: int) -> np.ndarray:
    return np.pad(x_RP, ((0, 0), (width - x_RP.shape[1], 0)), constant_values=value)


def select_groups(rollouts: list[Rollout], picks: list[tuple[int, int]], pad_id: int) -> Rollout:
    """The rollout made of groups ``picks`` = [(round, group), ...], in that order; prompts
    left-padded to the widest picked round's prompt bucket."""
    if not picks:
        raise ValueError("select_groups: no groups picked")
    G = rollouts[0].group_size
    rows = [(r, np.arange(g * G, (g + 1) * G)) for r, g in picks]
    width = max(np.asarray(rollouts[r].completions.prompt_ids).shape[1] for r, _ in picks)

    def gather(field: str, pad: int | None = None) -> np.ndarray:
        parts = [np.asarray(getattr(rollouts[r].completions, field))[idx] for r, idx in rows]
        if pad is not None:
            parts = [_left_pad_to(p, width, pad) for p in parts]
        return np.concatenate(parts)

    completions = Completions(
        prompt_ids=gather("prompt_ids", pad_id),
        prompt_mask=gather("prompt_mask", 0),
        ids=gather("ids"),
        mask=gather("mask"),
        logprobs=gather("logprobs"),
        sampling_logprobs=gather("sampling_logprobs"),
        lengths=gather("lengths"),
        truncated=gather("truncated"),
    )
    scores = concat_scores([take_scores(rollouts[r].scores, i) for r, i in rows])
    seconds: dict[str, float] = {}
    for out in rollouts:
        for k, v in out.seconds.items():
            seconds[k] = seconds.get(k, 0.0) + v
    return Rollout(
        rows=tuple(rollouts[r].rows[g] for r, g in picks),
        completions=completions,
        texts=tuple(t for (r, i) in rows for t in np.asarray(rollouts[r].texts, object)[i]),
        scores=scores,
        seconds=seconds,
    )


def step_rollout(
    run: RunSetup,
    trainable,
    iterator: Iterator[list[dict]],
    step_key: jax.Array,
    cfg: DynamicSamplingConfig,
) -> StepRollout:
    """One batch of prompts (dynamic sampling off), or the filtered rounds (module docstring)."""
    G = run.sampling.num_samples
    if not cfg.enabled:
        out = rollout(run, trainable, next(iterator), step_key, run.sampling)
        return StepRollout(batch=out, drawn=(out,), metrics={})
    drawn: list[Rollout] = []
    kept: list[tuple[int, int]] = []
    skipped: list[tuple[int, int]] = []
    num_prompts = 0
    while True:
        key = step_key if not drawn else jax.random.fold_in(step_key, len(drawn))
        out = rollout(run, trainable, next(iterator), key, run.sampling)
        num_prompts = len(out.rows)
        for g, informative in enumerate(informative_groups(out.scores.total, G)):
            (kept if informative else skipped).append((len(drawn), g))
        drawn.append(out)
        short = len(kept) < num_prompts
        if len(drawn) == cfg.max_rounds or not any_process(short):
            break
    filled = max(num_prompts - len(kept), 0)
    picks = kept[:num_prompts] + skipped[:filled]
    informative = float(np.sum(gather_rows(np.array([len(kept)]))))
    drawn_groups = float(np.sum(gather_rows(np.array([len(drawn) * num_prompts]))))
    global_filled = float(np.sum(gather_rows(np.array([filled]))))
    if global_filled and jax.process_index() == 0:
        logging.warning(
            "dynamic sampling: %d of %d groups have no reward variance after "
            "rl.dynamic_sampling.max_rounds=%d rounds; training on them as they are",
            int(global_filled),
            run.exp.rl.prompts_per_step,
            cfg.max_rounds,
        )
    metrics = {
        "dynamic/rounds": float(len(drawn)),
        "dynamic/kept_frac": informative / drawn_groups,
        "dynamic/prompts_consumed": drawn_groups,
        "dynamic/filled_groups": global_filled,
    }
    batch = select_groups(drawn, picks, run.special_tokens.pad_token_id)
    return StepRollout(batch=batch, drawn=tuple(drawn), metrics=metrics)
