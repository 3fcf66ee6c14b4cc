"""Tasks: datasets as rows, a resumable batch iterator, markers and prompt templates.

Importing this package registers every built-in dataset in `DATASETS`:
arithmetic, countdown, gsm8k, jsonl.
"""

from rlvr_jax.markers import DEFAULT_MARKERS, THINK_MARKERS, Markers, markers_for
from rlvr_jax.tasks import arithmetic, countdown, gsm8k, jsonl, math_tasks  # noqa: F401  (registers)
from rlvr_jax.tasks.base import DATASETS, Row, load_rows, register_dataset
from rlvr_jax.tasks.config import ArithmeticConfig, CountdownConfig, DataConfig
from rlvr_jax.tasks.iterator import RowIterator
from rlvr_jax.tasks.prompts import (
    PROMPT_STYLES,
    PromptConfig,
    build_messages,
    few_shot_examples,
    render_prompt,
    render_prompts,
    resolve_markers,
)

__all__ = [
    "DATASETS",
    "DEFAULT_MARKERS",
    "PROMPT_STYLES",
    "THINK_MARKERS",
    "ArithmeticConfig",
    "CountdownConfig",
    "DataConfig",
    "Markers",
    "PromptConfig",
    "Row",
    "RowIterator",
    "build_messages",
    "few_shot_examples",
    "load_rows",
    "markers_for",
    "register_dataset",
    "render_prompt",
    "render_prompts",
    "resolve_markers",
]
