"""Two schemas beyond question/answer: MATH (`data.name="math"`) and FinQA (`"finqa"`).

MATH / MATH-500 (Hendrycks et al., 2021; HuggingFaceH4/MATH-500): `problem`, `solution`
and, in MATH-500, `answer`. The ground truth is `answer` when the record has it, else the
last `\\boxed{}` of `solution`; it is LaTeX, kept as written (score it with the
`math_equivalence` reward: `\\frac{1}{2}` and `0.5` agree). Rows keep `solution`,
`level`, `subject` / `type` when present.

FinQA (Chen et al., 2021): `pre_text`, `table` (rows of cells, the first the header),
`post_text`, `question` and a numeric `answer` (top level, or the original release's
`qa.question` / `qa.exe_ans`). The row's question renders the report: the text before
the table, the table as a Markdown table, the text after, then the question. The answer
is normalized as a number (a trailing `%` dropped: FinQA's percentages are numbers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rlvr_jax.rewards.extraction import last_boxed
from rlvr_jax.rewards.numbers import normalize_number
from rlvr_jax.tasks.base import Row, Which, keep_valid, register_dataset
from rlvr_jax.tasks.config import DataConfig
from rlvr_jax.tasks.sources import load_records

MATH_KEPT = ("solution", "level", "subject", "type", "unique_id")


def math_row(record: Mapping[str, Any]) -> Row | None:
    problem = record.get("problem")
    answer = record.get("answer") or last_boxed(str(record.get("solution", "")))
    if not isinstance(problem, str) or not problem.strip() or not answer:
        return None
    kept = {k: record[k] for k in MATH_KEPT if k in record}
    return {**kept, "question": problem.strip(), "answer": " ".join(str(answer).split())}


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    return " ".join(str(part).strip() for part in value or ())


def markdown_table(table: Sequence[Sequence[Any]]) -> str:
    """Rows of cells (the first the header) as a Markdown table."""
    rows = [[str(cell).strip().replace("|", "/") for cell in row] for row in table]
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def finqa_number(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    return normalize_number(str(value).strip().removesuffix("%"))


def finqa_row(record: Mapping[str, Any]) -> Row | None:
    qa = record.get("qa") if isinstance(record.get("qa"), Mapping) else {}
    question = record.get("question") or qa.get("question")
    raw = record.get("answer")
    if raw is None:  # the original release (a mixed file reads as None where a key is absent)
        raw = qa.get("exe_ans", qa.get("answer"))
    answer = finqa_number(raw)
    if not isinstance(question, str) or not question.strip() or answer is None:
        return None
    parts = [
        _text(record.get("pre_text")),
        markdown_table(record.get("table") or ()),
        _text(record.get("post_text")),
        f"Question: {question.strip()}",
    ]
    return {
        "question": "\n\n".join(p for p in parts if p),
        "answer": answer,
        "table_question": question.strip(),
    }


def _load(config: DataConfig, which: Which, to_row, name: str) -> list[Row]:
    split = config.split if which == "train" else config.eval_split
    records = load_records(config.path, config.subset, split, is_train=which == "train")
    return keep_valid(records, to_row, source=f"{name} {config.path} [{split}]")


@register_dataset("math")
def load_math(config: DataConfig, which: Which) -> list[Row]:
    return _load(config, which, math_row, "math")


@register_dataset("finqa")
def load_finqa(config: DataConfig, which: Which) -> list[Row]:
    return _load(config, which, finqa_row, "finqa")
