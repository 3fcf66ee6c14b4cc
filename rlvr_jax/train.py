"""The RL loop: `train_and_evaluate(config, workdir)`.

One RL step, as data flows (DESIGN.md):
  rows -> chat prompts -> sampler (G completions each) -> detokenize -> verifier rewards
  -> the algorithm's batch (rl/algorithm.py: advantages, values or pairs) -> mu jitted
  updates -> metrics -> observers; held-out evaluation at step 0 and every
  `eval.every_steps`; Orbax checkpoints every `checkpoint.every_steps`, at the end, and on
  SIGTERM/SIGINT (save, then exit cleanly). A step's evaluation comes before its
  checkpoint, so a run killed at any moment resumes with nothing lost; a resume checks the
  config against the checkpoint's (resume.py) and, at the last step, only finishes a
  missing export (run_export.py).
The loop holds no algorithm math: every piece is a pure function from `rlvr_jax.*`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np

from rlvr_jax import checkpoints, health, resume, rng_streams
from rlvr_jax.compile_cache import enable_compile_cache
from rlvr_jax.config import ExperimentConfig
from rlvr_jax.config_builder import ConfigError
from rlvr_jax.dynamic_sampling import step_rollout
from rlvr_jax.evaluation.runner import evaluate
from rlvr_jax.log_filter import quiet_third_party_logging
from rlvr_jax.multihost import any_process, gather_rows
from rlvr_jax.observers import make_observers
from rlvr_jax.observers.compilations import CompilationCounter
from rlvr_jax.observers.metrics import TOKENS_PER_S, memory_metrics
from rlvr_jax.optim import make_optimizer, make_schedule
from rlvr_jax.parallel import make_mesh
from rlvr_jax.provenance import run_provenance
from rlvr_jax.rewards.tasks import batch_reward_metrics
from rlvr_jax.rl.algorithm import Algorithm, init_state, make_algorithm
from rlvr_jax.rl.train_batch import completion_metrics
from rlvr_jax.rl.train_state import step_rng
from rlvr_jax.rollout import Rollout, global_scores
from rlvr_jax.run_export import EXPORT_DIR, export_run, is_current
from rlvr_jax.run_setup import RunSetup, setup_run
from rlvr_jax.workdir import prepare_workdir


class NonFiniteMetricError(FloatingPointError):
    """A train metric became NaN/inf; the last good checkpoint is kept."""


@contextlib.contextmanager
def stop_requests() -> Iterator[dict[str, str]]:
    """Turns SIGTERM/SIGINT into a flag the loop checks after each step."""
    requested: dict[str, str] = {}
    previous = {}

    def handle(signum, _frame):
        requested["signal"] = signal.Signals(signum).name
        logging.warning("%s received: finishing this step, saving, exiting", requested["signal"])

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(ValueError):  # not the main thread: leave handlers alone
            previous[sig] = signal.signal(sig, handle)
    try:
        yield requested
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def check_finite(step: int, metrics: dict[str, float]) -> None:
    bad = sorted(k for k, v in metrics.items() if not math.isfinite(v))
    if bad:
        raise NonFiniteMetricError(
            f"RL step {step}: non-finite {bad} (e.g. {bad[0]}={metrics[bad[0]]}). Check "
            "optim.learning_rate, optim.max_grad_norm and model.dtype; the checkpoints "
            "before this step are kept."
        )


def check_batch_fits_mesh(exp: ExperimentConfig, num_devices: int) -> None:
    """Sampling gives each device whole prompts, and each micro-batch is split evenly over
    the mesh's devices (data and fsdp axes): checked before anything loads."""
    for key, prompts in (
        ("rl.prompts_per_step", exp.rl.prompts_per_step),
        ("eval.batch_size", exp.eval.batch_size),
    ):
        if prompts % num_devices:
            raise ConfigError(
                f"{key} ({prompts}) must be a multiple of the {num_devices} devices of the "
                "mesh (mesh.data * mesh.fsdp): the sampler gives each device whole prompts"
            )
    rows = exp.train_rows // exp.rl.num_microbatches
    if rows % num_devices:
        raise ConfigError(
            f"rl.prompts_per_step: a micro-batch of {rows} rows ({exp.train_rows_formula} / "
            f"rl.num_microbatches) does not split over the {num_devices} devices of the "
            "mesh (mesh.data * mesh.fsdp)"
        )


def log_samples(out: Rollout) -> list[dict]:
    """The first completion of each prompt, with its rewards, for the sample observers."""
    G = out.group_size
    return [
        {
            "prompt": row["question"],
            "completion": out.texts[i * G],
            "answer": row["answer"],
            "rewards": {name: float(values[i * G]) for name, values in out.scores.per_fn.items()},
        }
        for i, row in enumerate(out.rows)
    ]


def rl_step(run: RunSetup, state, iterator, algorithm: Algorithm):
    """Rollout (dynamic sampling included), rewards, the algorithm's batch and its mu
    updates: (state, metrics, samples). Every drawn batch's verdicts go back to the
    prompt source (`observe`: a curriculum's pass rates) before the step returns, so a
    checkpoint after it holds the updated source."""
    exp = run.exp
    t_step = time.perf_counter()
    key = step_rng(state, rng_streams.ROLLOUT)
    sampled = step_rollout(run, state.trainable, iterator, key, exp.rl.dynamic_sampling)
    out = sampled.batch
    G = exp.sampling.num_samples
    for r in sampled.drawn:  # the global batch's verdicts, in the order it was drawn
        iterator.observe(gather_rows(r.scores.correct).reshape(-1, G))
    drawn = [r.completions for r in sampled.drawn]
    num_tokens = float(sum(np.sum(gather_rows(c.lengths)) for c in drawn))  # every process
    t_score = time.perf_counter()
    # Before the updates (the step donates the state); blocking only splits the timing.
    batch, batch_metrics = jax.block_until_ready(algorithm.prepare(out, state))
    t_train = time.perf_counter()
    for _ in range(exp.rl.num_iterations):
        state, train_metrics = algorithm.update(state, batch)
    train_metrics = jax.device_get({**train_metrics, **batch_metrics})
    now = time.perf_counter()
    metrics = {
        **batch_reward_metrics(global_scores(sampled.drawn_scores), run.task_names),
        **completion_metrics(drawn),
        **sampled.metrics,
        **out.seconds,
        "throughput/sample_tokens_per_s": num_tokens / out.seconds["time/sample_s"],
        **{k: float(v) for k, v in train_metrics.items()},
        "time/score_s": t_train - t_score,
        "time/train_s": now - t_train,
        "time/step_s": now - t_step,
        TOKENS_PER_S: num_tokens / (now - t_step),
        **memory_metrics(),
    }
    return state, metrics, log_samples(out)


def train_and_evaluate(config: Any, workdir: str | Path) -> dict[str, float]:
    """Trains, evaluates and checkpoints in `workdir`; resumes from its latest checkpoint.

    Returns the metrics of the last RL step run (empty if none ran).
    """
    exp = ExperimentConfig.from_config_dict(config)  # config errors: before any compile
    quiet_third_party_logging(not exp.observers.third_party_logging)
    enable_compile_cache(exp.compile_cache)
    workdir = prepare_workdir(workdir)  # not writable: WorkdirError naming it, before any load
    is_main = jax.process_index() == 0
    config_json = json.loads(config.to_json_best_effort())
    manager = checkpoints.make_manager(workdir, exp.checkpoint)
    saved = checkpoints.latest_meta(manager)  # a changed config fails here (resume.py)
    if saved is not None:
        where = f"the checkpoint {manager.directory / str(saved[0])}"
        resume.check_config(
            saved[1]["config"], config_json, exp.checkpoint.allow_config_changes, where
        )
    mesh = make_mesh(exp.mesh)
    check_batch_fits_mesh(exp, mesh.size)
    run = setup_run(exp, mesh)
    policy = run.policy

    optimizer, schedule = make_optimizer(exp.optim), make_schedule(exp.optim)
    state = init_state(exp, policy, jax.random.key(exp.seed), optimizer)
    start_step, iterator_state, health_state = 0, None, health.HealthState.empty()
    restored = checkpoints.restore_latest(manager, state)
    if restored is not None:
        state, meta = restored
        start_step, iterator_state = int(meta["rl_step"]), meta["data_iterator"]
        health_state = health.from_meta(meta)
        logging.info("resumed from %s at RL step %d", manager.directory, start_step)
    iterator = run.iterator(iterator_state)

    algorithm = make_algorithm(exp, policy, optimizer, schedule, state)
    with make_observers(exp.observers, workdir, is_main) as observers:
        run_meta = {"num_steps": exp.max_steps, "resumed_from_step": start_step}
        observers.on_run_start(config_json, {**run_meta, "provenance": run_provenance()})

        def save(step: int) -> None:
            meta = {"rl_step": step, "data_iterator": iterator.state(), "config": config_json}
            meta["health"] = health_state.to_json()  # the alerts' history: exact on resume
            checkpoints.save(manager, step, state, meta)

        def maybe_evaluate(step: int) -> None:
            every = exp.eval.every_steps
            if not run.has_eval or every == 0 or (step % every and step != exp.max_steps):
                return
            t0 = time.perf_counter()
            progress = functools.partial(observers.on_eval_progress, step)
            metrics, samples = evaluate(run, state.trainable, progress)
            metrics["eval/time_s"] = time.perf_counter() - t0
            observers.on_eval_end(step, metrics, samples)

        if start_step == 0:
            maybe_evaluate(0)
        if finished := resume.finished_message(start_step, exp.max_steps, str(manager.directory)):
            logging.info("%s", finished)
        step, metrics, halt = start_step, {}, None
        stopping = False  # a stop request seen by any process: all stop after the same step
        with stop_requests() as stop, CompilationCounter() as compiles:
            while step < exp.max_steps and not stopping:
                before = compiles.snapshot()
                state, metrics, samples = rl_step(run, state, iterator, algorithm)
                metrics |= compiles.metrics_since(before)
                step += 1
                check_finite(step, metrics)
                health_state, alerts = health.check(health_state, step, metrics, exp.health)
                metrics |= health.report(alerts)  # warns at onset; alert/<name> = 1.0
                observers.on_step_end(step, metrics, samples)
                halt = health.stop_alert(alerts, exp.health)  # an alert in health.stop_on
                stopping = any_process(bool(stop) or halt is not None)
                if not stopping:  # before the save: a checkpoint at step k has k's eval too
                    maybe_evaluate(step)
                if step % exp.checkpoint.every_steps == 0 or step == exp.max_steps or stopping:
                    save(step)
            if stopping and halt is None:  # a stop by an alert raises below
                logging.warning(
                    "stopped by %s after RL step %d (checkpoint saved)",
                    stop["signal"] if stop else "another process's stop request",
                    step,
                )
        if step >= exp.max_steps:  # also when a resume had nothing to do: redo a lost export
            out = workdir / EXPORT_DIR
            if is_current(out, step):
                logging.info("exports of RL step %d are in %s", step, out)
            else:
                export_run(run, state, out, step, is_main)
        observers.on_run_end(step, metrics)
        if halt is not None:
            raise health.HealthStopError(halt, Path(manager.directory) / str(step))
        return metrics
