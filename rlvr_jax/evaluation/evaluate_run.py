"""scripts/eval.py's library side: evaluate a base model or a training run's checkpoint.

Results go to `out_dir`: `questions.jsonl` (one record per question, written as it is
finished, so a crash loses nothing and a rerun continues), `report.json` and `report.md`.
`compare_dirs` pairs two such directories by question and writes the paired test.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any

import jax

from rlvr_jax import checkpoints
from rlvr_jax.compile_cache import enable_compile_cache
from rlvr_jax.config import ExperimentConfig
from rlvr_jax.config_builder import ConfigError
from rlvr_jax.evaluation.report import (
    IncrementalJsonl,
    write_atomic,
    write_comparison,
    write_report,
)
from rlvr_jax.evaluation.runner import generate_records, summarize_records
from rlvr_jax.evaluation.scoring import compare_runs, correctness_mode
from rlvr_jax.optim import make_optimizer
from rlvr_jax.parallel import make_mesh
from rlvr_jax.rl.algorithm import init_state
from rlvr_jax.run_setup import RunSetup, TaskSetup, setup_run

QUESTIONS, REPORT_JSON, REPORT_MD = "questions.jsonl", "report.json", "report.md"


def _trainable(run: RunSetup, workdir: Path | None) -> tuple[Any | None, str]:
    """(trainable, label): the latest checkpoint's trainable tree, or None for the base."""
    if workdir is None:
        return None, f"base:{run.exp.model.checkpoint}"
    rng = jax.random.key(run.exp.seed)
    optimizer = make_optimizer(run.exp.optim)
    state = init_state(run.exp, run.policy, rng, optimizer)
    manager = checkpoints.make_manager(workdir, run.exp.checkpoint)
    restored = checkpoints.restore_latest(manager, state)
    if restored is None:
        raise FileNotFoundError(f"--workdir {workdir}: no checkpoint under {manager.directory}")
    state, meta = restored
    return state.trainable, f"{workdir}@step{meta['rl_step']}"


def evaluate_run(config: Any, workdir: str | Path | None, out_dir: str | Path) -> dict:
    """Evaluates on `data.eval_split` (first `eval.max_samples`; 0 = all); returns the summary.

    A mixture evaluates each task on its own eval split into `out_dir/<task>/` (the same
    files) and returns `{"tasks": {task: summary}}`; `out_dir/tasks.md` lists each task's
    greedy accuracy with its interval.
    """
    exp = ExperimentConfig.from_config_dict(config)
    enable_compile_cache(exp.compile_cache)
    if not any(task.data.eval_split for task in exp.tasks):
        raise ValueError("data.eval_split: empty; name the split to evaluate")
    mesh = make_mesh(exp.mesh)
    if exp.eval.batch_size % mesh.size:
        raise ConfigError(
            f"eval.batch_size ({exp.eval.batch_size}) must be a multiple of the {mesh.size} "
            "devices of the mesh (mesh.data * mesh.fsdp): the sampler gives each device "
            "whole prompts"
        )
    run = setup_run(exp, mesh)
    trainable, label = _trainable(run, Path(workdir) if workdir else None)
    out_dir = Path(out_dir)
    meta = {"policy": label, "config": json.loads(config.to_json_best_effort())}
    if not exp.is_mixture:
        return _evaluate_task(run, run.only_task, trainable, label, out_dir, meta)
    summaries = {
        task.name: _evaluate_task(run, task, trainable, label, out_dir / task.name, meta)
        for task in run.tasks
        if task.eval_rows
    }
    if jax.process_index() == 0:
        lines = ["| task | greedy accuracy | interval | questions |", "| --- | --- | --- | --- |"]
        for name, summary in summaries.items():
            mode = correctness_mode(next(t for t in exp.tasks if t.name == name).rewards)
            acc = summary["metrics"][f"greedy/accuracy_{mode}"]
            lines.append(
                f"| {name} | {acc['mean']:.3f} | [{acc['ci_low']:.3f}, {acc['ci_high']:.3f}] "
                f"| {summary['num_questions']} |"
            )
        write_atomic(out_dir / "tasks.md", "\n".join(lines) + "\n")
        logging.info("evaluation of %s per task:\n%s", label, "\n".join(lines))
    return {"tasks": summaries}


def _evaluate_task(
    run: RunSetup,
    task: TaskSetup,
    trainable: Any | None,
    label: str,
    out_dir: Path,
    meta: dict,
) -> dict:
    """One task's evaluation into `out_dir` (questions.jsonl, report.json, report.md)."""
    exp = run.exp
    rows = list(task.eval_rows)
    if exp.eval.max_samples:
        rows = rows[: exp.eval.max_samples]
    fingerprint = {
        "policy": label,
        "data": [task.task.data.name, task.task.data.path, task.task.data.eval_split, len(rows)],
        "prompt": json.loads(json.dumps(task.task.prompt.__dict__, default=str)),
        "eval": [exp.eval.num_samples, exp.eval.temperature, exp.eval.max_new_tokens],
        # Records hold verdicts and vote keys: a change of verifier or its params re-scores.
        "verifier": [task.task.rewards.correctness, dict(task.task.rewards.correctness_params())],
        "seed": exp.seed,
    }
    is_main = jax.process_index() == 0  # the only writer; every process samples
    results_file = (
        IncrementalJsonl(out_dir / QUESTIONS, fingerprint=fingerprint)
        if is_main
        else contextlib.nullcontext(None)
    )
    with results_file as results:
        records = generate_records(run, trainable, rows, results, seed=exp.seed)
    summary = summarize_records(run, records)
    if is_main:
        meta = {**meta, "num_questions": len(rows)}
        write_report(out_dir / REPORT_JSON, out_dir / REPORT_MD, summary=summary, meta=meta)
        logging.info("evaluation of %s:\n%s", label, (out_dir / REPORT_MD).read_text())
    return summary


def _read_records(eval_dir: Path) -> list[dict]:
    path = eval_dir / QUESTIONS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not an evaluation directory (run scripts/eval.py)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def compare_dirs(config: Any, dir_a: str | Path, dir_b: str | Path, out_dir: str | Path) -> dict:
    """Paired comparison A - B of two evaluation directories on their shared questions."""
    exp = ExperimentConfig.from_config_dict(config)
    dir_a, dir_b, out_dir = Path(dir_a), Path(dir_b), Path(out_dir)
    comparison = compare_runs(
        _read_records(dir_a),
        _read_records(dir_b),
        ks=exp.eval.ks,
        confidence=exp.eval.confidence,
        num_resamples=exp.eval.num_resamples,
        seed=exp.seed,
    )
    write_comparison(
        out_dir / "comparison.json",
        out_dir / "comparison.md",
        comparison=comparison,
        meta={"a": str(dir_a), "b": str(dir_b)},
        label_a=dir_a.name,
        label_b=dir_b.name,
    )
    logging.info("comparison:\n%s", (out_dir / "comparison.md").read_text())
    return comparison
