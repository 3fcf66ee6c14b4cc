"""Incremental per-question results: resume after a crash; JSON and Markdown reports."""

import json

import pytest

from rlvr_jax.config_builder import build
from rlvr_jax.evaluation import (
    Generations,
    IncrementalJsonl,
    comparison_table,
    markdown_table,
    paired_comparison,
    score_question,
    summarize,
    verifier_for,
    write_comparison,
    write_report,
)
from rlvr_jax.markers import DEFAULT_MARKERS
from rlvr_jax.rewards import RewardsConfig

FINGERPRINT = {"model": "tiny", "num_samples": 4, "ks": (1, 4)}


def record(i):
    return {"id": f"q{i}", "question": f"what is {i}?", "answer": str(i), "greedy": None}


def test_records_read_back_after_reopening(tmp_path):
    path = tmp_path / "eval" / "questions.jsonl"
    with IncrementalJsonl(path, fingerprint=FINGERPRINT) as out:
        assert out.records == [] and out.done_ids == frozenset()
        for i in range(3):
            out.append(record(i))
        assert out.done_ids == {"q0", "q1", "q2"}
    with IncrementalJsonl(path, fingerprint=FINGERPRINT) as out:
        assert out.records == [record(i) for i in range(3)]
        out.append(record(3))
    lines = path.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["q0", "q1", "q2", "q3"]


def test_resume_after_a_crash_mid_line(tmp_path):
    path = tmp_path / "questions.jsonl"
    with IncrementalJsonl(path, fingerprint=FINGERPRINT) as out:
        out.append(record(0))
        out.append(record(1))
    # Simulate a crash while writing q2: half a line, no newline.
    with open(path, "ab") as f:
        f.write(json.dumps(record(2)).encode()[:25])
    with IncrementalJsonl(path, fingerprint=FINGERPRINT) as out:
        assert out.done_ids == {"q0", "q1"}  # q2 is evaluated again
        out.append(record(2))
    with IncrementalJsonl(path, fingerprint=FINGERPRINT) as out:
        assert [r["id"] for r in out.records] == ["q0", "q1", "q2"]
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_unreadable_last_line_is_dropped_but_corruption_elsewhere_raises(tmp_path):
    path = tmp_path / "questions.jsonl"
    with IncrementalJsonl(path, fingerprint=FINGERPRINT) as out:
        out.append(record(0))
    with open(path, "ab") as f:
        f.write(b"\x00\x00garbage\n")
    with IncrementalJsonl(path, fingerprint=FINGERPRINT) as out:
        assert out.done_ids == {"q0"}
        out.append(record(1))
    path.write_text(path.read_text().replace('"q0"', '"q0'))  # break line 1 of 2
    with pytest.raises(ValueError, match=":1: not valid JSON"):
        IncrementalJsonl(path, fingerprint=FINGERPRINT)


def test_a_different_setup_refuses_to_resume(tmp_path):
    path = tmp_path / "questions.jsonl"
    with IncrementalJsonl(path, fingerprint=FINGERPRINT) as out:
        out.append(record(0))
    with pytest.raises(ValueError, match=r"differs in \['num_samples'\]"):
        IncrementalJsonl(path, fingerprint={**FINGERPRINT, "num_samples": 8})
    (tmp_path / "questions.jsonl.fingerprint.json").unlink()
    with pytest.raises(ValueError, match="cannot be checked"):
        IncrementalJsonl(path, fingerprint=FINGERPRINT)


def test_append_rejects_duplicates_and_missing_ids(tmp_path):
    with IncrementalJsonl(tmp_path / "q.jsonl", fingerprint={}) as out:
        out.append(record(0))
        with pytest.raises(ValueError, match="already written"):
            out.append(record(0))
        with pytest.raises(ValueError, match="str `id`"):
            out.append({"question": "?"})


SUMMARY = {
    "num_questions": 2,
    "num_samples": 4,
    "has_greedy": True,
    "ks": [1],
    "confidence": 0.95,
    "num_resamples": 100,
    "seed": 0,
    "metrics": {
        "greedy/accuracy_strict": {"mean": 0.5, "ci_low": 0.0, "ci_high": 1.0, "unit": "fraction"},
        "greedy/length_mean": {"mean": 25.0, "ci_low": 20.0, "ci_high": 30.0, "unit": "tokens"},
    },
}


def test_markdown_table_and_report_files(tmp_path):
    table = markdown_table(SUMMARY)
    assert "| metric | value | 95% CI |" in table
    assert "| greedy/accuracy_strict | 50.0% | [0.0, 100.0] |" in table
    assert "| greedy/length_mean | 25.0 | [20.0, 30.0] |" in table
    write_report(tmp_path / "r.json", tmp_path / "r.md", summary=SUMMARY, meta={"model": "m"})
    assert json.loads((tmp_path / "r.json").read_text())["summary"] == SUMMARY
    assert (tmp_path / "r.md").read_text() == table
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.md"]  # no temp files


def test_comparison_table(tmp_path):
    a, b = [1] * 10 + [0] * 2, [0] * 10 + [1] * 2
    metric = paired_comparison(a, b, confidence=0.95, num_resamples=100, seed=0)
    comparison = {
        "num_questions": 12,
        "num_only_in_a": 0,
        "num_only_in_b": 0,
        "confidence": 0.95,
        "num_resamples": 100,
        "seed": 0,
        "metrics": {"greedy/accuracy_strict": {**metric, "unit": "fraction"}},
    }
    table = comparison_table(comparison, label_a="trained", label_b="base")
    assert "A = trained, B = base" in table
    assert "| greedy/accuracy_strict | 83.3% | 16.7% | +66.7 pp |" in table
    assert "| 0.039 | mcnemar_exact |" in table
    write_comparison(
        tmp_path / "c.json",
        tmp_path / "c.md",
        comparison=comparison,
        meta={},
        label_a="trained",
        label_b="base",
    )
    assert json.loads((tmp_path / "c.json").read_text())["label_a"] == "trained"


def test_a_resumed_run_summarizes_like_an_uninterrupted_one(tmp_path):
    texts = ["<answer>4</answer>", "it is 4", "<answer>5</answer>"]
    rewards = build(
        RewardsConfig,
        {
            "fns": [{"name": "answer_match", "weight": 1.0, "params": {"mode": "strict"}}],
            "on_error": "raise",
            "correctness": "answer_match",
        },
        "rewards",
    )
    verifier = verifier_for(rewards, DEFAULT_MARKERS)
    records = [
        score_question(
            question_id=f"q{i}",
            row={"question": f"{i}?", "answer": "4"},
            greedy=Generations(texts[i % 3 : i % 3 + 1], [3], [False]),
            sampled=Generations(texts, [3, 4, 5], [False, False, i == 2]),
            verifier=verifier,
        )
        for i in range(5)
    ]
    path = tmp_path / "questions.jsonl"
    with IncrementalJsonl(path, fingerprint={}) as out:
        for r in records[:3]:
            out.append(r)
    with open(path, "ab") as f:  # crash while writing the fourth
        f.write(json.dumps(records[3]).encode()[:40])
    with IncrementalJsonl(path, fingerprint={}) as out:
        for r in records:
            if r["id"] not in out.done_ids:
                out.append(r)
        resumed = out.records
    stats = {"ks": (1, 3), "confidence": 0.9, "num_resamples": 200, "seed": 1}
    assert resumed == records
    assert summarize(resumed, **stats) == summarize(records, **stats)
    # The vote keys maj@k reads come back from the file too.
    assert [r["sampled"]["vote_strict"] for r in resumed] == [["4", None, "5"]] * 5
    assert "sampled/maj@3_strict" in summarize(resumed, **stats)["metrics"]
