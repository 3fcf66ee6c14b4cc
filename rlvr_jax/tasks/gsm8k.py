"""GSM8K (grade-school math word problems), from the hub or from local files.

`data.path="openai/gsm8k"`, `data.subset="main"` loads the hub copy; a local directory
with train.jsonl / test.jsonl (fields `question`, `answer`) works the same. The ground
truth is the number after the last `####` of the reference solution, normalized
("#### 1,080" gives "1080").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rlvr_jax.rewards.numbers import normalize_number
from rlvr_jax.tasks.base import Row, Which, keep_valid, register_dataset
from rlvr_jax.tasks.config import DataConfig
from rlvr_jax.tasks.sources import load_records

_CALCULATOR = re.compile(r"<<[^<>]*>>")  # GSM8K's calculator annotations, "<<16-3-4=9>>"


def parse_gsm8k_answer(solution: str) -> str | None:
    """The normalized number after the last `####`, or None."""
    if "####" not in solution:
        return None
    return normalize_number(solution.rsplit("####", 1)[1])


def gsm8k_row(record: Mapping[str, Any]) -> Row | None:
    """A row from one GSM8K record, or None if its answer does not parse."""
    question, solution = record["question"], record["answer"]
    answer = parse_gsm8k_answer(solution)
    if answer is None or not isinstance(question, str) or not question.strip():
        return None
    reasoning = _CALCULATOR.sub("", solution.rsplit("####", 1)[0]).strip()
    return {
        "question": question.strip(),
        "answer": answer,
        "solution": solution,  # the reference text, "#### N" line included
        "demo_reasoning": reasoning,
        "demo_answer": answer,
    }


@register_dataset("gsm8k")
def load_gsm8k(config: DataConfig, which: Which) -> list[Row]:
    split = config.split if which == "train" else config.eval_split
    records = load_records(config.path, config.subset, split, is_train=which == "train")
    return keep_valid(records, gsm8k_row, source=f"gsm8k {config.path} [{split}]")
