"""Generate and score a held-out split: the one evaluation path for training and eval.py.

For each batch of `eval.batch_size` questions: a greedy completion (temperature 0) and,
when `eval.num_samples` = A > 0, A samples at `eval.temperature`, both drawn and scored by
the training rollout (`rollout.rollout`: the run's policy, prompts, rewards and
verifier, every row field included); each question becomes a record
(`scoring.score_question`) appended to an optional crash-safe JSONL, so a rerun skips
what is already done. Metrics are `summarize`d from the records.

Multi-process: every process holds all the rows; each batch of `eval.batch_size`
questions (the last one padded with copies of its last row) is split into contiguous
equal slices, one per process, that all processes sample together on the mesh; the
records are gathered so every process returns the same list, and only the caller on
process 0 passes a `results` file. The sampled rows sit at the same global row indices
as in a one-process run, so the report is the same for any process count.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from rlvr_jax import rng_streams
from rlvr_jax.evaluation.report import IncrementalJsonl
from rlvr_jax.evaluation.scoring import (
    Generations,
    TaskVerifier,
    correctness_mode,
    flat_metrics,
    question_id,
    score_question,
    summarize,
    verifier_for,
)
from rlvr_jax.evaluation.stats import bootstrap_means
from rlvr_jax.multihost import gather_objects
from rlvr_jax.rollout import rollout
from rlvr_jax.run_setup import RunSetup, TaskSetup


def _generations(
    run: RunSetup,
    trainable: Any | None,
    batch_rows: list[dict],
    rng: jax.Array,
    num_samples: int,
    temperature: float,
) -> list[Generations]:
    """This process's questions of the batch: Generations of `num_samples` completions at
    `temperature` (0 = greedy) for each of its real (not padding) rows."""
    cfg = dataclasses.replace(
        run.sampling,
        num_samples=num_samples,
        temperature=temperature,
        top_k=0,
        top_p=1.0,
        max_new_tokens=run.exp.eval.max_new_tokens,
    )
    # A short last batch is padded with copies of its last row: one compiled shape.
    size = run.exp.eval.batch_size
    padded = batch_rows + [batch_rows[-1]] * (size - len(batch_rows))
    start, stop = _process_slice(size)
    out = rollout(run, trainable, padded[start:stop], rng, cfg)
    lengths, truncated = out.completions.lengths.tolist(), out.completions.truncated.tolist()
    n = num_samples
    return [
        Generations(
            out.texts[i * n : (i + 1) * n],
            lengths[i * n : (i + 1) * n],
            truncated[i * n : (i + 1) * n],
            correct=out.scores.correct[i * n : (i + 1) * n].tolist(),
        )
        for i in range(max(0, min(stop, len(batch_rows)) - start))
    ]


def _process_slice(batch_size: int) -> tuple[int, int]:
    """[start, stop) of this process's contiguous share of a batch of `batch_size` rows."""
    count = jax.process_count()
    if batch_size % count:
        raise ValueError(
            f"eval.batch_size ({batch_size}) must be a multiple of the process count ({count})"
        )
    share = batch_size // count
    return jax.process_index() * share, (jax.process_index() + 1) * share


def generate_records(
    run: RunSetup,
    trainable: Any | None,
    rows: list[dict],
    results: IncrementalJsonl | None = None,
    seed: int = 0,
    progress: Callable[[list[dict[str, Any]], int], None] | None = None,
) -> list[dict[str, Any]]:
    """Records of all `rows` (reusing those already in `results`), in row order.

    `trainable` is a train state's trainable tree; None evaluates the base model. Every
    process must call it (sampling is one program over all devices); `results`, if any,
    belongs to process 0, which shares what it holds with the others. After each batch,
    `progress(records so far, number of rows)` is called; None logs a line instead.
    """
    cfg = run.exp.eval
    verifiers: list[TaskVerifier] = [verifier_for(t.task.rewards, t.markers) for t in run.tasks]
    done = {r["id"]: r for r in gather_objects(results.records if results is not None else [])}
    ids = [question_id(i, row) for i, row in enumerate(rows)]
    todo = [i for i, qid in enumerate(ids) if qid not in done]
    if done:
        logging.info("evaluation: %d of %d questions already done", len(done), len(rows))
    root = jax.random.key(seed)
    for start in range(0, len(todo), cfg.batch_size):
        batch = todo[start : start + cfg.batch_size]
        batch_rows = [rows[i] for i in batch]
        t0 = time.perf_counter()
        greedy_key = rng_streams.stream_key(root, rng_streams.EVAL)  # unused by argmax
        greedy = _generations(run, trainable, batch_rows, greedy_key, 1, 0.0)
        sampled = [None] * len(greedy)
        if cfg.num_samples:
            # Keyed by the block's first question: a resumed evaluation draws the same.
            key = rng_streams.counter_key(root, rng_streams.EVAL, batch[0])
            sampled = _generations(
                run, trainable, batch_rows, key, cfg.num_samples, cfg.temperature
            )
        seconds = time.perf_counter() - t0
        first, _ = _process_slice(cfg.batch_size)
        mine = [
            score_question(
                question_id=ids[batch[first + j]],
                row=rows[batch[first + j]],
                greedy=g,
                sampled=s,
                verifier=verifiers[run.task_index(rows[batch[first + j]])],
            )
            for j, (g, s) in enumerate(zip(greedy, sampled, strict=True))
        ]
        for record in gather_objects(mine):  # every process's, in batch order
            done[record["id"]] = record
            if results is not None:
                results.append(record)
        if progress is None:
            logging.info(
                "evaluation: %d / %d questions (%.1f s per question in this batch)",
                len(done),
                len(rows),
                seconds / len(batch),
            )
        else:
            progress(list(done.values()), len(rows))
    return [done[qid] for qid in ids]


def summarize_records(run: RunSetup, records: list[dict[str, Any]]) -> dict[str, Any]:
    cfg = run.exp.eval
    return summarize(
        records,
        ks=cfg.ks,
        confidence=cfg.confidence,
        num_resamples=cfg.num_resamples,
        seed=run.exp.seed,
    )


def _num_correct(records: list[dict[str, Any]], mode: str) -> int:
    return sum(bool(r["greedy"][f"correct_{mode}"][0]) for r in records)


def _report_progress(
    progress: Callable[[int, int, int], None],
    mode: str,
    done: int,
    correct: int,
    total: int,
    records: list[dict[str, Any]],
    _: int,
) -> None:
    progress(done + len(records), total, correct + _num_correct(records, mode))


def task_eval_metrics(
    run: RunSetup, task: TaskSetup, records: list[dict[str, Any]]
) -> dict[str, float]:
    """`eval/...` metrics of one task's records (a mixture prefixes them `eval/<task>/`):
    every summary metric, and `accuracy` (+ /ci_low, /ci_high), greedy accuracy under the
    extraction mode of the task's correctness reward."""
    prefix = f"eval/{task.name}/" if run.exp.is_mixture else "eval/"
    mode = correctness_mode(task.task.rewards)
    flat = flat_metrics(summarize_records(run, records))
    metrics = {f"{prefix}{k}": v for k, v in flat.items()}
    for suffix in ("", "/ci_low", "/ci_high"):
        metrics[f"{prefix}accuracy{suffix}"] = flat[f"greedy/accuracy_{mode}{suffix}"]
    return metrics


def weighted_accuracy(
    run: RunSetup, per_task: list[tuple[TaskSetup, list[dict[str, Any]]]]
) -> dict[str, float]:
    """`eval/accuracy` of a mixture: the tasks' greedy accuracies weighted by the mixture
    weights (renormalized over the tasks evaluated), with a stratified bootstrap interval
    (each task's questions resampled on their own, seeded by `seed` + the task's index)."""
    cfg = run.exp.eval
    weights = np.asarray([task.task.weight for task, _ in per_task])
    weights = weights / weights.sum()
    mean, means_B = 0.0, np.zeros(cfg.num_resamples)
    for t, (w, (task, records)) in enumerate(zip(weights, per_task, strict=True)):
        mode = correctness_mode(task.task.rewards)
        values = np.asarray([r["greedy"][f"correct_{mode}"][0] for r in records], np.float64)
        mean += w * values.mean()
        means_B += w * bootstrap_means(
            values, num_resamples=cfg.num_resamples, seed=run.exp.seed + t
        )
    alpha = 1.0 - cfg.confidence
    low, high = np.quantile(means_B, [alpha / 2, 1.0 - alpha / 2])
    return {
        "eval/accuracy": float(mean),
        "eval/accuracy/ci_low": float(low),
        "eval/accuracy/ci_high": float(high),
    }


def evaluate(
    run: RunSetup,
    trainable: Any | None,
    progress: Callable[[int, int, int], None] | None = None,
) -> tuple[dict[str, float], list[dict]]:
    """In-training evaluation on each task's eval rows: flat `eval/...` metrics and a few
    samples.

    `eval/accuracy` is greedy accuracy under the extraction mode of the correctness reward
    (`rewards.correctness`), the number the run is trying to raise; a mixture reports
    every metric per task (`eval/<task>/...`, `eval/<task>/accuracy` with its interval) and
    `eval/accuracy` as the weighted total (`weighted_accuracy`). `progress(done, total,
    correct)`, if given, follows it batch by batch (the console's evaluation bar).
    """
    limit = run.exp.eval.train_max_samples
    tasks = [
        (task, list(task.eval_rows[:limit] if limit else task.eval_rows))
        for task in run.tasks
        if task.eval_rows
    ]
    total = sum(len(rows) for _, rows in tasks)
    metrics: dict[str, float] = {}
    per_task: list[tuple[TaskSetup, list[dict[str, Any]]]] = []
    done, correct = 0, 0  # over the tasks evaluated before this one
    for task, rows in tasks:
        mode = correctness_mode(task.task.rewards)
        report = None
        if progress is not None:
            report = functools.partial(_report_progress, progress, mode, done, correct, total)
        records = generate_records(run, trainable, rows, seed=run.exp.seed, progress=report)
        done, correct = done + len(records), correct + _num_correct(records, mode)
        metrics |= task_eval_metrics(run, task, records)
        per_task.append((task, records))
    if run.exp.is_mixture:
        metrics |= weighted_accuracy(run, per_task)
    samples = [
        {
            "prompt": r["question"],
            "completion": r["greedy"]["completions"][0],
            "answer": r["answer"],
            "rewards": {
                f"correct_{m}": float(r["greedy"][f"correct_{m}"][0]) for m in ("strict", "lenient")
            },
        }
        for r in [r for _, records in per_task for r in records][
            : run.exp.observers.num_samples_to_log
        ]
    ]
    return metrics, samples
