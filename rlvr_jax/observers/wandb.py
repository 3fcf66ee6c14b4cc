"""Weights & Biases sink (optional extra: `pip install 'rlvr_jax[wandb]'`).

Metrics are logged with our RL step as the x axis (`define_metric("*", step_metric="step")`),
not W&B's internal `_step`, so an evaluation at the same step as its train row and the steps
repeated after a resume are all accepted (W&B silently drops `step=` values that go back).
Samples are `wandb.Table`s (`samples/train`, `samples/eval`); final metrics go to the run
summary. The run id is kept in `<workdir>/wandb_run_id.txt`, so a resumed process continues
the same W&B run (`resume="allow"`); a fresh start (resumed_from_step = 0) begins a new one.
Offline runs: `WANDB_MODE=offline` (then `wandb sync <workdir>/wandb/offline-run-*`).
"""

from __future__ import annotations

import os
import secrets
import string
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlvr_jax.observers.base import Metrics, Observer, Sample
from rlvr_jax.observers.registry import register_observer

if TYPE_CHECKING:
    from rlvr_jax.observers.config import ObserversConfig

RUN_ID_FILE = "wandb_run_id.txt"
INSTALL_HINT = "observers.wandb=True needs the wandb package: pip install 'rlvr_jax[wandb]'"
SAMPLE_COLUMNS = ("step", "prompt", "completion", "rewards", "answer")
_ID_CHARS = string.ascii_lowercase + string.digits


def new_run_id() -> str:
    """A W&B run id: 8 base-36 characters, as W&B makes them (its helper moved between
    releases, so we do not import it)."""
    return "".join(secrets.choice(_ID_CHARS) for _ in range(8))


def import_wandb() -> Any:
    """The `wandb` module, or an ImportError that names the config key and the install line."""
    try:
        import wandb
    except ImportError as e:
        raise ImportError(f"{INSTALL_HINT} ({e})") from e
    return wandb


class WandbObserver(Observer):
    """Logs to a W&B run created at `on_run_start` and finished at `close`."""

    name = "wandb"

    def __init__(self, workdir: str | os.PathLike, project: str, entity: str, run_name: str):
        self._wandb = import_wandb()
        self._dir = Path(workdir)
        self._project = project
        self._entity = entity
        self._run_name = run_name
        self._run: Any = None

    def on_run_start(self, config: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        id_file = self._dir / RUN_ID_FILE
        if meta["resumed_from_step"] > 0 and id_file.exists():
            run_id = id_file.read_text().strip()
        else:
            run_id = new_run_id()
            id_file.write_text(run_id + "\n")
        self._run = self._wandb.init(
            project=self._project,
            entity=self._entity or None,  # "" in config: the account's default entity
            name=self._run_name or None,  # "" in config: W&B picks a name
            dir=str(self._dir),
            config=dict(config),
            id=run_id,
            resume="allow",
        )
        self._run.define_metric("step")
        self._run.define_metric("*", step_metric="step")
        self._run.summary.update({f"meta/{key}": value for key, value in meta.items()})

    def on_step_end(self, step: int, metrics: Metrics, samples: list[Sample] | None) -> None:
        self._log(step, metrics, samples, "train")

    def on_eval_end(self, step: int, metrics: Metrics, samples: list[Sample] | None) -> None:
        self._log(step, metrics, samples, "eval")

    def on_run_end(self, step: int, final_metrics: Metrics) -> None:
        self._require_run().summary.update({"step": step, **final_metrics})

    def close(self) -> None:
        if self._run is not None:
            self._run.finish()
            self._run = None

    def _require_run(self) -> Any:
        if self._run is None:
            raise RuntimeError("WandbObserver: on_run_start must come first")
        return self._run

    def _log(self, step: int, metrics: Metrics, samples: list[Sample] | None, split: str) -> None:
        row: dict[str, Any] = {"step": step, **metrics}
        if samples:
            data = [
                [step, s["prompt"], s["completion"], _rewards_text(s["rewards"]), str(s["answer"])]
                for s in samples
            ]
            row[f"samples/{split}"] = self._wandb.Table(columns=list(SAMPLE_COLUMNS), data=data)
        self._require_run().log(row)


def _rewards_text(rewards: Mapping[str, float]) -> str:
    return " ".join(f"{name}={value:.3f}" for name, value in rewards.items())


@register_observer("wandb")
def make_wandb_observer(config: ObserversConfig, workdir: str | os.PathLike) -> Observer:
    """`observers.wandb`: a W&B run in `observers.wandb_project`; imports wandb (or fails)."""
    return WandbObserver(workdir, config.wandb_project, config.wandb_entity, config.wandb_run_name)
