"""scripts/eval.py on the tiny config: base vs a trained run, resume, paired comparison;
and on the countdown config, whose verifier reads row fields (numbers, target)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rlvr_jax.config import ExperimentConfig
from rlvr_jax.config_builder import sibling_config
from rlvr_jax.evaluation import Generations, score_question, verifier_for
from rlvr_jax.evaluation.evaluate_run import QUESTIONS, compare_dirs, evaluate_run
from rlvr_jax.rewards import build_rewards, rows_to_fields, score_completions
from rlvr_jax.rewards.countdown import countdown_answers, countdown_correct, countdown_vote_key
from rlvr_jax.tasks import load_rows
from rlvr_jax.tasks.prompts import resolve_markers
from rlvr_jax.train import train_and_evaluate

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny.py"
COUNTDOWN = REPO / "configs" / "countdown.py"


def tiny(num_samples: int = 2):
    config = sibling_config(str(TINY), "tiny")
    config.eval.num_samples = num_samples
    config.eval.ks = (1, 2)
    config.eval.num_resamples = 200
    return config


def countdown():
    """configs/countdown.py on the tiny random model, with tiny sizes."""
    config = sibling_config(str(COUNTDOWN), "countdown")
    config.model.checkpoint = "tiny-random-llama"
    config.data.countdown.num_train = 8
    config.data.countdown.num_eval = 4
    config.eval.max_samples = 2
    config.eval.batch_size = 2
    config.eval.max_new_tokens = 4
    config.eval.num_samples = 2
    config.eval.ks = (1, 2)
    config.eval.num_resamples = 200
    return config


def test_base_trained_and_comparison(tmp_path):
    base_dir, run_dir = tmp_path / "eval_base", tmp_path / "eval_run"
    summary = evaluate_run(tiny(), None, base_dir)
    assert summary["num_questions"] == 4 and summary["num_samples"] == 2
    for name in (
        "greedy/accuracy_strict",
        "greedy/accuracy_lenient",
        "sampled/pass@2_strict",
        "sampled/maj@2_lenient",
        "greedy/format_rate",
        "greedy/truncation_rate",
    ):
        metric = summary["metrics"][name]
        assert metric["ci_low"] <= metric["mean"] <= metric["ci_high"], name
    report = json.loads((base_dir / "report.json").read_text())
    assert report["meta"]["policy"].startswith("base:")
    assert (base_dir / "report.md").read_text().count("|") > 10

    # A rerun finds every question done and reproduces the same report.
    lines_before = (base_dir / QUESTIONS).read_text()
    again = evaluate_run(tiny(), None, base_dir)
    assert (base_dir / QUESTIONS).read_text() == lines_before
    assert again["metrics"] == summary["metrics"]

    workdir = tmp_path / "train"
    train_and_evaluate(tiny(), workdir)
    trained = evaluate_run(tiny(), workdir, run_dir)
    assert json.loads((run_dir / "report.json").read_text())["meta"]["policy"].endswith("@step3")
    comparison = compare_dirs(tiny(), run_dir, base_dir, tmp_path / "cmp")
    assert comparison["num_questions"] == trained["num_questions"] == 4
    greedy = comparison["metrics"]["greedy/accuracy_lenient"]
    assert 0.0 <= greedy["p_value"] <= 1.0
    assert (tmp_path / "cmp" / "comparison.md").is_file()


def test_cli_runs(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "eval.py"),
            f"--config={TINY}",
            f"--out={tmp_path / 'e'}",
            "--config.eval.num_samples=0",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "e" / "report.json").is_file()


def test_countdown_eval_scores_with_the_row_fields(tmp_path):
    config = countdown()
    exp = ExperimentConfig.from_config_dict(config)
    assert exp.rewards.correctness == "countdown_equation"
    summary = evaluate_run(config, None, tmp_path / "eval")
    assert (summary["num_questions"], summary["num_samples"]) == (2, 2)
    for name in (
        "greedy/accuracy_strict",
        "greedy/accuracy_lenient",
        "sampled/pass@1_strict",
        "sampled/pass@2_lenient",
        "sampled/maj@2_strict",
        "sampled/maj@2_lenient",
        "sampled/format_rate",
    ):
        metric = summary["metrics"][name]
        assert metric["ci_low"] <= metric["mean"] <= metric["ci_high"], name
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["summary"]["metrics"] == summary["metrics"]

    rows = load_rows(exp.data, "eval")[:2]
    assert all(isinstance(row["numbers"], list) and len(row["numbers"]) >= 3 for row in rows)
    lines = (tmp_path / "eval" / QUESTIONS).read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 2
    markers = resolve_markers(exp.prompt, exp.model.checkpoint)
    for record, row in zip(records, rows, strict=True):
        assert (record["question"], record["answer"]) == (row["question"], str(row["target"]))
        for source, n in (("greedy", 1), ("sampled", 2)):
            fields = record[source]
            texts = fields["completions"]
            assert len(texts) == n
            numbers, target = [row["numbers"]] * n, [row["target"]] * n
            for mode in ("strict", "lenient"):
                assert len(fields[f"vote_{mode}"]) == len(fields[f"correct_{mode}"]) == n
                # The verdicts and answers of the row's own numbers and target.
                expected = countdown_correct(
                    texts, numbers=numbers, target=target, markers=markers, mode=mode
                )
                assert fields[f"correct_{mode}"] == expected, (source, mode)
                answers = countdown_answers(
                    texts, numbers=numbers, target=target, markers=markers, mode=mode
                )
                assert fields[f"answer_{mode}"] == answers
                votes = [None if a is None else countdown_vote_key(a) for a in answers]
                assert fields[f"vote_{mode}"] == votes

    # A random model will not solve countdown, so the verdicts above are all False. The
    # two paths evaluation takes its verdicts from (the rollout's rewards: the strict
    # `correct` it passes on; the config's verifier: everything else) must accept each
    # row's hidden solution with that row's fields and reject it with the other row's.
    solutions = [
        f"{markers.reasoning_start}r{markers.reasoning_end}"
        f"{markers.answer_start}{row['demo_answer']}{markers.answer_end}"
        for row in rows
    ]
    rewards = build_rewards(exp.rewards, markers)
    for fields_rows, expected in ((rows, [True, True]), (rows[::-1], [False, False])):
        scored = score_completions(rewards, solutions, rows_to_fields(fields_rows))
        assert [bool(c) for c in scored.correct] == expected
    verifier = verifier_for(exp.rewards, markers)
    for i, row in enumerate(rows):
        for j, text in enumerate(solutions):
            record = score_question(
                question_id=f"{i}-{j}",
                row=row,
                greedy=Generations([text], [1], [False]),
                sampled=None,
                verifier=verifier,
            )
            greedy = record["greedy"]
            assert greedy["correct_strict"] == greedy["correct_lenient"] == [i == j], (i, j)
            assert greedy["vote_strict"] == [str(rows[j]["target"])]
