"""Typed, validated data configuration (`config.data`).

Each field mirrors one key of the ml_collections config and has no default: the values
live in the config files (configs/arithmetic.py declares every key), and
`config_builder.build(DataConfig, config.data, "data")` converts them once, at the
boundary. Errors name the dotted key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from rlvr_jax.tasks.answers import check_answer_rule
from rlvr_jax.tasks.base import DATASETS
from rlvr_jax.tasks.curriculum import CurriculumConfig

ARITHMETIC_OPERATORS = ("+", "-", "*", "/")
FILE_DATASETS = ("gsm8k", "jsonl", "math", "finqa")  # need data.path


def _check_range(key: str, low: int, high: int) -> None:
    if low > high:
        raise ValueError(f"{key}: empty range [{low}, {high}]")


def _check_split_sizes(key: str, num_train: int, num_eval: int, holdout: float) -> None:
    if num_train < 1:
        raise ValueError(f"{key}.num_train: must be >= 1, got {num_train}")
    if num_eval < 1:
        raise ValueError(f"{key}.num_eval: must be >= 1 (set data.eval_split='' for no eval)")
    if not 0.0 < holdout < 1.0:
        raise ValueError(f"{key}.holdout_fraction: must be in (0, 1), got {holdout}")


def _check_operators(key: str, operators: tuple[str, ...]) -> None:
    if not operators or any(op not in ARITHMETIC_OPERATORS for op in operators):
        raise ValueError(
            f"{key}.operators: a non-empty subset of {list(ARITHMETIC_OPERATORS)}, "
            f"got {operators!r}"
        )


@dataclasses.dataclass(frozen=True)
class ArithmeticConfig:
    """Synthetic `a <op> b` problems (`data.arithmetic`)."""

    operators: tuple[str, ...]  # drawn uniformly; '/' problems divide exactly
    min_value: int  # operands are drawn from [min_value, max_value]
    max_value: int
    num_train: int  # distinct problems in the train split
    num_eval: int  # distinct problems in the held-out eval split
    holdout_fraction: float  # share of all problems reserved for eval, by hash

    def __post_init__(self) -> None:
        object.__setattr__(self, "operators", tuple(self.operators))
        _check_operators("data.arithmetic", self.operators)
        _check_range("data.arithmetic.min_value/max_value", self.min_value, self.max_value)
        if "/" in self.operators and self.max_value < 1:
            raise ValueError("data.arithmetic.max_value: '/' needs a positive divisor")
        _check_split_sizes("data.arithmetic", self.num_train, self.num_eval, self.holdout_fraction)


@dataclasses.dataclass(frozen=True)
class CountdownConfig:
    """TinyZero-style countdown instances (`data.countdown`): reach the target."""

    min_count: int  # how many numbers an instance has, drawn from [min_count, max_count]
    max_count: int
    min_number: int  # each number is drawn from [min_number, max_number]
    max_number: int
    min_target: int  # only instances whose target is in [min_target, max_target]
    max_target: int
    operators: tuple[str, ...]  # used to build the hidden solution
    num_train: int
    num_eval: int
    holdout_fraction: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "operators", tuple(self.operators))
        _check_operators("data.countdown", self.operators)
        if self.min_count < 2:
            raise ValueError(f"data.countdown.min_count: at least 2, got {self.min_count}")
        _check_range("data.countdown.min_count/max_count", self.min_count, self.max_count)
        if self.min_number < 1:
            raise ValueError(f"data.countdown.min_number: at least 1, got {self.min_number}")
        _check_range("data.countdown.min_number/max_number", self.min_number, self.max_number)
        _check_range("data.countdown.min_target/max_target", self.min_target, self.max_target)
        _check_split_sizes("data.countdown", self.num_train, self.num_eval, self.holdout_fraction)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which dataset, which splits, how many rows, in which order (`config.data`)."""

    name: str  # DATASETS: arithmetic countdown gsm8k jsonl math finqa, or 'module:loader'
    # gsm8k / jsonl: a hub id ("openai/gsm8k"), a local directory holding {split}.jsonl /
    # .json / .parquet files, a path containing "{split}", or one local file (train only).
    path: str
    subset: str  # hub config name, e.g. "main" for openai/gsm8k; "" for none
    split: str  # file/hub split used for training
    eval_split: str  # file/hub split used for evaluation; "" for none
    max_samples: int  # keep the first N training rows after shuffling; 0 = all
    eval_max_samples: int  # keep the first N eval rows; 0 = all
    shuffle: bool  # shuffle the training rows by `seed` (eval keeps file order)
    seed: int  # shuffling, epoch order, and synthetic training instances
    question_field: str  # jsonl: record key holding the question
    answer_field: str  # jsonl: record key holding the answer
    answer_rule: str  # jsonl: how the answer is read (tasks/answers.py ANSWER_RULES)
    answer_regex: str  # answer_rule 'regex': a pattern with one group
    max_prompt_tokens: int  # drop rows whose rendered prompt is longer; 0 = keep all
    arithmetic: ArithmeticConfig
    countdown: CountdownConfig
    curriculum: CurriculumConfig  # which prompts a batch draws (tasks/curriculum.py)
    # Named tasks, each with its weight and the data/prompt/rewards keys it overrides
    # (tasks/mixture.py); {} = this section alone is the one task.
    mixture: Mapping[str, Any]

    def __post_init__(self) -> None:
        DATASETS.lookup(self.name)  # a registered name, or an importable `module:loader`
        if self.name in FILE_DATASETS and not self.path:
            raise ValueError(
                f"data.path: required for dataset {self.name!r} (a hub id such as "
                "'openai/gsm8k', a local directory, or a file)"
            )
        if not self.split:
            raise ValueError("data.split: must name the training split")
        for key in ("max_samples", "eval_max_samples"):
            if getattr(self, key) < 0:
                raise ValueError(f"data.{key}: must be >= 0 (0 = all), got {getattr(self, key)}")
        for key, sub in _NESTED:
            if not isinstance(getattr(self, key), sub):
                raise ValueError(
                    f"data.{key}: expected {sub.__name__}; build with config_builder.build"
                )
        check_answer_rule(self.answer_rule, self.answer_regex)
        if self.max_prompt_tokens < 0:
            raise ValueError(f"data.max_prompt_tokens: must be >= 0, got {self.max_prompt_tokens}")
        for key in ("question_field", "answer_field"):
            if not getattr(self, key):
                raise ValueError(f"data.{key}: must be a non-empty field name")
        if not isinstance(self.mixture, Mapping) or not all(
            isinstance(task, Mapping) for task in self.mixture.values()
        ):
            raise ValueError("data.mixture: a group of tasks, each a group of keys ({} = none)")


_NESTED = (
    ("arithmetic", ArithmeticConfig),
    ("countdown", CountdownConfig),
    ("curriculum", CurriculumConfig),
)
