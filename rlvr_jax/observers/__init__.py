"""Observers: console, JSONL, TensorBoard and W&B sinks behind one event interface.

Importing this package registers every built-in sink in `OBSERVERS`:
console, jsonl, tensorboard, wandb (each enabled by its boolean key in `config.observers`).

    config = build(ObserversConfig, cfg.observers, "observers")  # config_builder.build;
    # a training run has it already: ExperimentConfig.from_config_dict(cfg).observers
    observers = make_observers(config, workdir, is_main_process=jax.process_index() == 0)
    with observers:
        observers.on_run_start(cfg.to_dict(), {"num_steps": n, "resumed_from_step": k})
        for step in range(k + 1, n + 1):
            ...
            observers.on_step_end(step, metrics, samples if observers.wants_samples(step) else None)
            if step % eval_every == 0:
                observers.on_eval_end(step, eval_metrics, eval_samples)
        observers.on_run_end(n, final_metrics)

The contract of each event is in `base.py`; the file layout and resume rule in `jsonl.py`;
how a sink registers its factory in `registry.py`.
"""

from rlvr_jax.observers.base import META_KEYS, SAMPLE_KEYS, Metrics, Observer, Sample
from rlvr_jax.observers.config import ObserversConfig, make_observers
from rlvr_jax.observers.group import ObserverError, ObserverGroup
from rlvr_jax.observers.metrics import (
    DEVICE_PEAK_MB,
    HOST_PEAK_MB,
    TOKENS_PER_S,
    device_peak_memory_mb,
    host_peak_rss_mb,
    memory_metrics,
    phase_key,
    timed,
    tokens_per_second,
)
from rlvr_jax.observers.registry import OBSERVERS, register_observer

__all__ = [
    "DEVICE_PEAK_MB",
    "HOST_PEAK_MB",
    "META_KEYS",
    "OBSERVERS",
    "SAMPLE_KEYS",
    "TOKENS_PER_S",
    "Metrics",
    "Observer",
    "ObserverError",
    "ObserverGroup",
    "ObserversConfig",
    "Sample",
    "device_peak_memory_mb",
    "host_peak_rss_mb",
    "make_observers",
    "memory_metrics",
    "phase_key",
    "register_observer",
    "timed",
    "tokens_per_second",
]
