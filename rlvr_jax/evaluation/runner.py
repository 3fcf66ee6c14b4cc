"""Generate and score a held-out split: the one evaluation path for training and eval.py.

For each batch of `eval.batch_size` questions: a greedy completion (temperature 0) and,
when `eval.num_samples` = n > 0, n samples at `eval.temperature`; each question becomes
a record (`scoring.score_question`) appended to an optional crash-safe JSONL, so a rerun
skips what is already done. Metrics are `summarize`d from the records.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from typing import Any

import jax
import numpy as np

from rlvr_jax.evaluation.report import IncrementalJsonl
from rlvr_jax.evaluation.scoring import (
    Generations,
    flat_metrics,
    question_id,
    score_question,
    summarize,
    verifier_for,
)
from rlvr_jax.rewards.registry import get_reward
from rlvr_jax.run_setup import decode_completions
from rlvr_jax.sampling import generate

_EVAL_RNG = 7


def _generations(run, params, lora, rows, rng, num_samples: int, temperature: float):
    """Per row: Generations of `num_samples` completions at `temperature` (0 = greedy)."""
    cfg = dataclasses.replace(
        run.sampling,
        num_samples=num_samples,
        temperature=temperature,
        top_k=0,
        top_p=1.0,
        max_new_tokens=run.exp.eval.max_new_tokens,
    )
    # A short last batch is padded with copies of its last prompt: one compiled shape.
    prompts = run.prompt_ids(rows)
    prompts += [prompts[-1]] * (run.exp.eval.batch_size - len(prompts))
    out = generate(run.model, params, lora, prompts, rng, cfg)
    texts = decode_completions(run.tokenizer, out)
    lengths, truncated = np.asarray(out.lengths), np.asarray(out.truncated)
    n = num_samples
    return [
        Generations(
            tuple(texts[i * n : (i + 1) * n]),
            tuple(lengths[i * n : (i + 1) * n]),
            tuple(truncated[i * n : (i + 1) * n]),
        )
        for i in range(len(rows))
    ]


def generate_records(
    run, params, lora, rows, results: IncrementalJsonl | None = None, seed: int = 0
) -> list[dict[str, Any]]:
    """Records of all `rows` (reusing those already in `results`), in row order."""
    cfg = run.exp.eval
    verifier = verifier_for(run.exp.rewards)
    done = {r["id"]: r for r in results.records} if results is not None else {}
    ids = [question_id(i, row) for i, row in enumerate(rows)]
    todo = [i for i, qid in enumerate(ids) if qid not in done]
    if done:
        logging.info("evaluation: %d of %d questions already done", len(done), len(rows))
    rng = jax.random.fold_in(jax.random.key(seed), _EVAL_RNG)
    for start in range(0, len(todo), cfg.batch_size):
        batch = todo[start : start + cfg.batch_size]
        batch_rows = [rows[i] for i in batch]
        greedy = _generations(run, params, lora, batch_rows, rng, 1, 0.0)
        sampled = [None] * len(batch)
        if cfg.num_samples:
            key = jax.random.fold_in(rng, batch[0])  # per question block: resumable
            sampled = _generations(
                run, params, lora, batch_rows, key, cfg.num_samples, cfg.temperature
            )
        for i, g, s in zip(batch, greedy, sampled, strict=True):
            record = score_question(
                question_id=ids[i],
                row=rows[i],
                greedy=g,
                sampled=s,
                verifier=verifier,
                markers=run.markers,
            )
            done[ids[i]] = record
            if results is not None:
                results.append(record)
        logging.info("evaluation: %d / %d questions", len(done), len(rows))
    return [done[qid] for qid in ids]


def summarize_records(run, records: list[dict[str, Any]]) -> dict[str, Any]:
    cfg = run.exp.eval
    return summarize(
        records,
        ks=cfg.ks,
        confidence=cfg.confidence,
        num_resamples=cfg.num_resamples,
        seed=run.exp.seed,
    )


def correctness_mode(rewards_cfg) -> str:
    """'strict' or 'lenient': the extraction mode the correctness reward is configured with,
    else the default of its verifier's own `mode` parameter."""
    params = rewards_cfg.correctness_params()
    if "mode" in params:
        return str(params["mode"])
    verifier = get_reward(rewards_cfg.correctness, key="rewards.correctness").correct
    return str(inspect.signature(verifier).parameters["mode"].default)


def evaluate(run, params, lora) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """In-training evaluation on `run.eval_rows`: flat `eval/...` metrics and a few samples.

    `eval/accuracy` is greedy accuracy under the extraction mode of the correctness reward
    (`rewards.correctness`), the number the run is trying to raise.
    """
    rows = list(run.eval_rows)
    if run.exp.eval.train_max_samples:
        rows = rows[: run.exp.eval.train_max_samples]
    records = generate_records(run, params, lora, rows, seed=run.exp.seed)
    metrics = {f"eval/{k}": v for k, v in flat_metrics(summarize_records(run, records)).items()}
    mode = correctness_mode(run.exp.rewards)
    for suffix in ("", "/ci_low", "/ci_high"):
        metrics[f"eval/accuracy{suffix}"] = metrics[f"eval/greedy/accuracy_{mode}{suffix}"]
    samples = [
        {
            "prompt": r["question"],
            "completion": r["greedy"]["completions"][0],
            "answer": r["answer"],
            "rewards": {
                f"correct_{m}": float(r["greedy"][f"correct_{m}"][0]) for m in ("strict", "lenient")
            },
        }
        for r in records[: run.exp.observers.num_samples_to_log]
    ]
    return metrics, samples
