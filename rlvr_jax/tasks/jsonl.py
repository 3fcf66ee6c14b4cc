"""A user's own question/answer files (`data.name="jsonl"`): json, jsonl, parquet or csv.

`data.question_field` and `data.answer_field` name the record keys; `data.answer_rule`
(`tasks/answers.py`) reads the answer: after `####`, the last `\\boxed{}`, a regex group,
or the column as is ('auto': after `####` if present, a number normalized, other text
kept with whitespace collapsed, for `math_equivalence`). Every other key of the record is
kept as a row field, so a custom reward can read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rlvr_jax.tasks.answers import extract_answer
from rlvr_jax.tasks.base import Row, Which, keep_valid, register_dataset
from rlvr_jax.tasks.config import DataConfig
from rlvr_jax.tasks.sources import load_records


@register_dataset("jsonl")
def load_jsonl(config: DataConfig, which: Which) -> list[Row]:
    split = config.split if which == "train" else config.eval_split

    def to_row(record: Mapping[str, Any]) -> Row | None:
        question = record[config.question_field]
        answer = extract_answer(
            record[config.answer_field], config.answer_rule, config.answer_regex
        )
        if answer is None or not isinstance(question, str) or not question.strip():
            return None
        return {**record, "question": question.strip(), "answer": answer}

    records = load_records(config.path, config.subset, split, is_train=which == "train")
    fields = f"question_field={config.question_field!r}, answer_field={config.answer_field!r}"
    return keep_valid(records, to_row, source=f"jsonl {config.path} [{split}] ({fields})")
