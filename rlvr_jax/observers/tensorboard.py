"""TensorBoard sink (tensorboardX): `tensorboard --logdir <workdir>/tensorboard`.

Every metric is a scalar under its own slash-namespaced tag at its step (TensorBoard groups
tags by their first component: reward/, policy/, time/, eval/, ...). Samples become text
(`samples/train`, `samples/eval`), the config and run meta text at run start (`run/config`,
`run/meta`), the final metrics text at run end (`run/final`). Events are flushed after each
step, so a crash loses at most the current step.

Resume: the writer is opened with `purge_step = resumed_from_step + 1`, which tells
TensorBoard to hide the events of earlier files at or after that step (what the crashed
process logged after its last checkpoint); a fresh start uses `purge_step = 0`, hiding any
older events in the same directory. Same rule as the JSONL files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlvr_jax.observers.base import Metrics, Observer, Sample, format_value
from rlvr_jax.observers.registry import register_observer

if TYPE_CHECKING:
    from rlvr_jax.observers.config import ObserversConfig

SUBDIR = "tensorboard"


def _code_block(text: str) -> str:
    """Markdown-indented block: TensorBoard renders text summaries as markdown."""
    return "\n".join("    " + line for line in text.splitlines())


def samples_markdown(samples: list[Sample]) -> str:
    """One markdown section per sample: rewards and answer, then prompt and completion verbatim."""
    parts = []
    for i, sample in enumerate(samples):
        rewards = ", ".join(f"{name}={value:.3f}" for name, value in sample["rewards"].items())
        parts += [
            f"**[{i}]** rewards: {rewards}; answer: `{sample['answer']}`",
            "prompt:",
            _code_block(str(sample["prompt"])),
            "completion:",
            _code_block(str(sample["completion"])),
        ]
    return "\n\n".join(parts)


class TensorBoardObserver(Observer):
    """Scalars per step and text samples into `<workdir>/tensorboard/`."""

    name = "tensorboard"

    def __init__(self, workdir: str | os.PathLike):
        import tensorboardX  # deferred: ~1-2 s to import, paid only when enabled

        self._summary_writer_cls = tensorboardX.SummaryWriter
        self.logdir = Path(workdir) / SUBDIR
        self._writer: Any = None

    def on_run_start(self, config: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        last_step = meta["resumed_from_step"]
        purge_step = last_step + 1 if last_step > 0 else 0
        self._writer = self._summary_writer_cls(
            logdir=str(self.logdir), purge_step=purge_step, flush_secs=30
        )
        config_text = json.dumps(dict(config), indent=1, default=str)
        self._writer.add_text("run/config", _code_block(config_text), last_step)
        self._writer.add_text(
            "run/meta", _code_block(json.dumps(dict(meta), default=str)), last_step
        )
        self._writer.flush()

    def on_step_end(self, step: int, metrics: Metrics, samples: list[Sample] | None) -> None:
        self._log(step, metrics, samples, "train")

    def on_eval_end(self, step: int, metrics: Metrics, samples: list[Sample] | None) -> None:
        self._log(step, metrics, samples, "eval")

    def on_run_end(self, step: int, final_metrics: Metrics) -> None:
        rows = [
            f"| {key} | {format_value(value)} |" for key, value in sorted(final_metrics.items())
        ]
        table = "\n".join(["| metric | value |", "| --- | --- |", *rows])
        self._require_writer().add_text("run/final", table, step)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _require_writer(self) -> Any:
        if self._writer is None:
            raise RuntimeError("TensorBoardObserver: on_run_start must come first")
        return self._writer

    def _log(self, step: int, metrics: Metrics, samples: list[Sample] | None, split: str) -> None:
        writer = self._require_writer()
        for key, value in metrics.items():
            writer.add_scalar(key, value, step)
        if samples:
            writer.add_text(f"samples/{split}", samples_markdown(samples), step)
        writer.flush()


@register_observer("tensorboard")
def make_tensorboard_observer(config: ObserversConfig, workdir: str | os.PathLike) -> Observer:
    """`observers.tensorboard`: `<workdir>/tensorboard/`; imports tensorboardX."""
    return TensorBoardObserver(workdir)
