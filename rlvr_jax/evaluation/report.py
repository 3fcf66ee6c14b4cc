"""Writing results: the per-question JSONL (incremental, crash-safe), JSON and Markdown reports.

Incremental writing (`IncrementalJsonl`): one JSON line per finished question, written
with a single write, then flush and fsync, so a crash loses at most the question being
written. Reopening the file reads back every complete line; a last line cut short by
a crash (no trailing newline, or not valid JSON) is dropped with a warning and cut from
the file, and the caller skips the ids in `done_ids`. A sidecar
`<path>.fingerprint.json` holds what must not change between a run and its resumption
(model, checkpoint, dataset, sampling settings, ...): reopening with a different
fingerprint raises instead of mixing two evaluations in one file.

Reports (`write_report`, `write_comparison`) are written whole, atomically (temporary
file, fsync, rename), so a reader never sees half a report.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlvr_jax.evaluation.scoring import UNIT_FRACTION

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike


def _canonical_json(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples become lists), for comparisons."""
    return json.loads(json.dumps(value, sort_keys=True))


def write_atomic(path: PathLike, text: str) -> None:
    """Write `text` to `path` via a temporary file in the same folder, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_complete_records(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Records of the complete lines of `path`, and the byte length they span.

    A last line without its newline, or whose JSON does not parse, is a write cut short
    by a crash and is left out; a bad line anywhere else is corruption and raises.
    """
    data = path.read_bytes()
    lines = data.split(b"\n")
    # After the split, the final element is what follows the last newline: b"" for a
    # file that ends cleanly, else a partial line.
    if lines[-1].strip():
        logger.warning("%s: dropping a partial last line (%d bytes)", path, len(lines[-1]))
    complete = lines[:-1]
    records, valid_bytes = [], 0
    for number, line in enumerate(complete, start=1):
        try:
            record = json.loads(line.decode("utf-8")) if line.strip() else None
        except ValueError as e:  # JSONDecodeError or UnicodeDecodeError
            if number == len(complete):
                logger.warning("%s: dropping an unreadable last line %d (%s)", path, number, e)
                break
            raise ValueError(f"{path}:{number}: not valid JSON ({e}); the file is corrupt") from e
        if record is not None:
            if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                raise ValueError(f"{path}:{number}: a record must be a JSON object with a str id")
            records.append(record)
        valid_bytes += len(line) + 1
    return records, valid_bytes


class IncrementalJsonl:
    """Append-only per-question results that survive a crash and resume (module docstring).

    with IncrementalJsonl(workdir / "eval/questions.jsonl", fingerprint=meta) as out:
        for i, row in enumerate(rows):
            qid = question_id(i, row)
            if qid not in out.done_ids:
                out.append(score_question(question_id=qid, row=row, ...))
        summary = summarize(out.records, ...)
    """

    def __init__(self, path: PathLike, *, fingerprint: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.fingerprint_path = self.path.with_name(self.path.name + ".fingerprint.json")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fingerprint = _canonical_json(dict(fingerprint))
        records: list[dict[str, Any]] = []
        valid_bytes = 0
        if self.path.exists():
            records, valid_bytes = _read_complete_records(self.path)
        self._check_fingerprint(fingerprint, has_records=bool(records))
        duplicates = sorted(i for i, n in Counter(r["id"] for r in records).items() if n > 1)
        if duplicates:
            raise ValueError(f"{self.path}: duplicate question ids {duplicates[:5]}")
        if self.path.exists() and valid_bytes != self.path.stat().st_size:
            with open(self.path, "r+b") as f:  # cut the partial line a crash left
                f.truncate(valid_bytes)
                os.fsync(f.fileno())
        self._records = records
        self._done_ids = {record["id"] for record in records}
        self._file = open(self.path, "ab")  # noqa: SIM115  (closed by close())
        if records:
            logger.info("%s: resuming after %d finished questions", self.path, len(records))

    def _check_fingerprint(self, fingerprint: Any, *, has_records: bool) -> None:
        if self.fingerprint_path.exists():
            stored = json.loads(self.fingerprint_path.read_text(encoding="utf-8"))
            if stored != fingerprint:
                keys = sorted(
                    key
                    for key in set(stored) | set(fingerprint)
                    if stored.get(key) != fingerprint.get(key)
                )
                raise ValueError(
                    f"{self.path}: these results were written with a different setup "
                    f"(differs in {keys}); use another output path or delete "
                    f"{self.path} and {self.fingerprint_path.name} to start over"
                )
            return
        if has_records:
            raise ValueError(
                f"{self.path}: has results but no {self.fingerprint_path.name}, so they "
                "cannot be checked against this setup; move the file away to start over"
            )
        write_atomic(self.fingerprint_path, json.dumps(fingerprint, indent=2, sort_keys=True))

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every record in the file (read back at open, then appended), in file order."""
        return list(self._records)

    @property
    def done_ids(self) -> frozenset[str]:
        """Ids of the questions already in the file."""
        return frozenset(self._done_ids)

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one record as a JSON line, then flush and fsync. Its id must be new."""
        record = dict(record)
        record_id = record.get("id")
        if not isinstance(record_id, str):
            raise ValueError(f"a record needs a str `id`, got {record_id!r}")
        if record_id in self._done_ids:
            raise ValueError(f"{self.path}: question {record_id!r} is already written")
        line = json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"
        self._file.write(line.encode("utf-8"))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._records.append(_canonical_json(record))
        self._done_ids.add(record_id)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> IncrementalJsonl:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _format_value(value: float, unit: str) -> str:
    return f"{100 * value:.1f}%" if unit == UNIT_FRACTION else f"{value:.1f}"


def _format_interval(low: float, high: float, unit: str) -> str:
    if unit == UNIT_FRACTION:
        return f"[{100 * low:.1f}, {100 * high:.1f}]"
    return f"[{low:.1f}, {high:.1f}]"


def _format_difference(value: float, unit: str) -> str:
    return f"{100 * value:+.1f} pp" if unit == UNIT_FRACTION else f"{value:+.1f}"


def _format_p(p_value: float) -> str:
    return f"{p_value:.2g}" if p_value < 0.001 else f"{p_value:.3f}"


def markdown_table(summary: Mapping[str, Any]) -> str:
    """A short Markdown table of `scoring.summarize` output: metric, value, interval."""
    level = f"{100 * summary['confidence']:g}%"
    lines = [
        f"{summary['num_questions']} questions; greedy: "
        f"{'yes' if summary['has_greedy'] else 'no'}; "
        f"{summary['num_samples']} samples per question; "
        f"{level} percentile bootstrap over questions ({summary['num_resamples']} resamples)",
        "",
        f"| metric | value | {level} CI |",
        "| --- | ---: | ---: |",
    ]
    for name, metric in summary["metrics"].items():
        unit = metric["unit"]
        lines.append(
            f"| {name} | {_format_value(metric['mean'], unit)} | "
            f"{_format_interval(metric['ci_low'], metric['ci_high'], unit)} |"
        )
    return "\n".join(lines) + "\n"


def comparison_table(comparison: Mapping[str, Any], *, label_a: str, label_b: str) -> str:
    """A Markdown table of `scoring.compare_runs` output: A, B, A - B with interval, p."""
    level = f"{100 * comparison['confidence']:g}%"
    lines = [
        f"A = {label_a}, B = {label_b}; {comparison['num_questions']} paired questions "
        f"(only in A: {comparison['num_only_in_a']}, only in B: {comparison['num_only_in_b']}); "
        f"p from McNemar's exact test (0/1 scores) or a sign-flip test",
        "",
        f"| metric | A | B | A - B | {level} CI | p | test |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, metric in comparison["metrics"].items():
        unit = metric["unit"]
        lines.append(
            f"| {name} | {_format_value(metric['mean_a'], unit)} | "
            f"{_format_value(metric['mean_b'], unit)} | "
            f"{_format_difference(metric['difference'], unit)} | "
            f"{_format_interval(metric['ci_low'], metric['ci_high'], unit)} | "
            f"{_format_p(metric['p_value'])} | {metric['test']} |"
        )
    return "\n".join(lines) + "\n"


def write_report(
    json_path: PathLike,
    markdown_path: PathLike,
    *,
    summary: Mapping[str, Any],
    meta: Mapping[str, Any],
) -> None:
    """Write `{"meta": meta, "summary": summary}` as JSON and `markdown_table` as Markdown."""
    report = {"meta": dict(meta), "summary": dict(summary)}
    write_atomic(json_path, json.dumps(report, indent=2, allow_nan=False) + "\n")
    write_atomic(markdown_path, markdown_table(summary))


def write_comparison(
    json_path: PathLike,
    markdown_path: PathLike,
    *,
    comparison: Mapping[str, Any],
    meta: Mapping[str, Any],
    label_a: str,
    label_b: str,
) -> None:
    """Write a two-run comparison as JSON (with labels and meta) and as a Markdown table."""
    report = {
        "meta": dict(meta),
        "label_a": label_a,
        "label_b": label_b,
        "comparison": dict(comparison),
    }
    write_atomic(json_path, json.dumps(report, indent=2, allow_nan=False) + "\n")
    write_atomic(markdown_path, comparison_table(comparison, label_a=label_a, label_b=label_b))
