"""Records and metrics on hand-made completions: strict vs lenient, pass@k, maj@k, rates."""

import functools
import json

import numpy as np
import pytest

from rlvr_jax.evaluation import (
    Generations,
    compare_runs,
    flat_metrics,
    question_id,
    question_scores,
    score_question,
    summarize,
    verifier_for,
)
from rlvr_jax.markers import DEFAULT_MARKERS, THINK_MARKERS
from rlvr_jax.rewards import RewardsConfig, RewardSpec
from rlvr_jax.rewards.answer_match import answer_correct

VERIFIER = answer_correct
STATS = {"confidence": 0.95, "num_resamples": 500, "seed": 0}

GOOD = "<reasoning>9 * 2 = 18</reasoning><answer>18</answer>"
WRONG = "<reasoning>9 * 2 = 17</reasoning><answer>17</answer>"
# The right number only outside the answer block: lenient accepts it, strict does not.
OUTSIDE = "9 * 2 = 18, so the answer is 18"
# Strict reads the answer block; lenient reads the last number anywhere, here the 2.
INSIDE_THEN_NUMBER = "<reasoning>r</reasoning><answer>18</answer> (checked 2 times)"


def gens(*texts, lengths=None, truncated=None):
    return Generations(
        texts=texts,
        lengths=lengths or [10] * len(texts),
        truncated=truncated or [False] * len(texts),
    )


def make_record(qid, greedy, sampled, answer="18"):
    row = {"question": f"question {qid}", "answer": answer}
    return score_question(
        question_id=qid,
        row=row,
        greedy=greedy,
        sampled=sampled,
        verifier=VERIFIER,
        markers=DEFAULT_MARKERS,
    )


def test_record_fields_strict_vs_lenient_and_format():
    record = make_record(
        "q0",
        greedy=gens(OUTSIDE),
        sampled=gens(GOOD, WRONG, OUTSIDE, INSIDE_THEN_NUMBER, lengths=[5, 6, 7, 8]),
    )
    assert record["greedy"]["answer_strict"] == [None]
    assert record["greedy"]["answer_lenient"] == ["18"]
    assert record["greedy"]["correct_strict"] == [False]
    assert record["greedy"]["correct_lenient"] == [True]
    sampled = record["sampled"]
    assert sampled["answer_strict"] == ["18", "17", None, "18"]
    assert sampled["answer_lenient"] == ["18", "17", "18", "2"]
    assert sampled["correct_strict"] == [True, False, False, True]
    assert sampled["correct_lenient"] == [True, False, True, False]
    assert sampled["format_ok"] == [True, True, False, False]
    assert sampled["lengths"] == [5, 6, 7, 8]
    json.dumps(record)  # JSON-ready


def test_markers_reach_extraction_and_format():
    think = "<think>r</think><answer>18</answer>"
    record = score_question(
        question_id="q",
        row={"question": "?", "answer": "18"},
        greedy=gens(think),
        sampled=None,
        verifier=VERIFIER,
        markers=THINK_MARKERS,
    )
    assert record["greedy"]["format_ok"] == [True]
    assert record["greedy"]["correct_strict"] == [True]
    assert record["sampled"] is None


def test_summary_on_hand_made_questions():
    records = [
        # q0: greedy right; samples: 2 of 4 strict-correct, lenient 2 of 4; maj@4 strict:
        # "18" (twice) beats "17" -> right.
        make_record(
            "q0",
            greedy=gens(GOOD, lengths=[20]),
            sampled=gens(GOOD, WRONG, OUTSIDE, INSIDE_THEN_NUMBER, truncated=[0, 0, 1, 0]),
        ),
        # q1: greedy only lenient-right; samples: 1 of 4 strict-correct; the wrong "17"
        # wins maj@4 strict two to one.
        make_record(
            "q1",
            greedy=gens(OUTSIDE, lengths=[30], truncated=[True]),
            sampled=gens(WRONG, WRONG, GOOD, OUTSIDE),
        ),
    ]
    summary = summarize(records, ks=(1, 2, 4), **STATS)
    metrics = {name: value["mean"] for name, value in summary["metrics"].items()}
    assert metrics["greedy/accuracy_strict"] == pytest.approx(0.5)
    assert metrics["greedy/accuracy_lenient"] == pytest.approx(1.0)
    assert metrics["greedy/format_rate"] == pytest.approx(0.5)
    assert metrics["greedy/length_mean"] == pytest.approx(25.0)
    assert metrics["greedy/truncation_rate"] == pytest.approx(0.5)
    # pass@1 = mean of c/n: (2/4 + 1/4) / 2.
    assert metrics["sampled/pass@1_strict"] == pytest.approx(0.375)
    # pass@2 = 1 - C(n-c, 2)/C(4, 2): q0 1 - 1/6, q1 1 - 3/6.
    assert metrics["sampled/pass@2_strict"] == pytest.approx(((1 - 1 / 6) + (1 - 3 / 6)) / 2)
    assert metrics["sampled/pass@4_strict"] == pytest.approx(1.0)
    # lenient: q0 answers 18, 17, 18, 2 (2 correct); q1 17, 17, 18, 18 (2 correct).
    assert metrics["sampled/pass@1_lenient"] == pytest.approx(0.5)
    # maj@2: q0 "18" vs "17" tie -> first ("18") right; q1 "17" wrong.
    assert metrics["sampled/maj@2_strict"] == pytest.approx(0.5)
    assert metrics["sampled/maj@4_strict"] == pytest.approx(0.5)
    # maj@4 lenient: q0 "18" twice wins; q1 "17" vs "18" two-two tie -> "17" first, wrong.
    assert metrics["sampled/maj@4_lenient"] == pytest.approx(0.5)
    assert "sampled/maj@1_strict" not in metrics  # maj@1 is left out (a noisier pass@1)
    assert metrics["sampled/format_rate"] == pytest.approx((2 / 4 + 3 / 4) / 2)
    assert metrics["sampled/truncation_rate"] == pytest.approx(1 / 8)
    assert metrics["sampled/length_mean"] == pytest.approx(10.0)
    for value in summary["metrics"].values():
        assert value["ci_low"] <= value["mean"] <= value["ci_high"]
    assert summary["metrics"]["greedy/length_mean"]["unit"] == "tokens"
    assert (summary["num_questions"], summary["num_samples"], summary["has_greedy"]) == (2, 4, True)
    flat = flat_metrics(summary)
    assert flat["greedy/accuracy_strict"] == pytest.approx(0.5)
    assert "greedy/accuracy_strict/ci_low" in flat
    json.dumps(summary)


def test_summary_greedy_only_and_layout_checks():
    records = [make_record(f"q{i}", greedy=gens(GOOD), sampled=None) for i in range(3)]
    summary = summarize(records, ks=(1,), **STATS)  # ks unused without samples
    assert (summary["num_samples"], summary["ks"]) == (0, [])
    assert not any(name.startswith("sampled/") for name in summary["metrics"])
    sampled = [make_record(f"q{i}", greedy=None, sampled=gens(GOOD, WRONG)) for i in range(2)]
    with pytest.raises(ValueError, match=r"eval.ks: \[4\] not in \[1, 2"):
        summarize(sampled, ks=(1, 4), **STATS)
    mixed = [*records, make_record("q9", greedy=gens(GOOD), sampled=gens(GOOD))]
    with pytest.raises(ValueError, match="same number of sampled"):
        question_scores(mixed, ks=())


def test_verifier_for_binds_the_training_correctness_params():
    config = RewardsConfig(fns=(RewardSpec("answer_match", params={"mode": "strict"}),))
    verifier = verifier_for(config)
    assert isinstance(verifier, functools.partial)
    assert "mode" not in verifier.keywords  # evaluation sets the mode itself
    for mode, expected in (("strict", [True, False]), ("lenient", [True, True])):
        got = verifier([GOOD, OUTSIDE], answer=["18", "18"], markers=DEFAULT_MARKERS, mode=mode)
        assert got == expected


def test_correctness_mode_is_configured_or_the_verifiers_default():
    from rlvr_jax.evaluation.runner import correctness_mode

    lenient = RewardsConfig(fns=(RewardSpec("answer_match", params={"mode": "lenient"}),))
    assert correctness_mode(lenient) == "lenient"
    unset = RewardsConfig(fns=(RewardSpec("countdown_equation"),), correctness="countdown_equation")
    assert correctness_mode(unset) == "strict"  # countdown_correct's own default


def test_question_id_is_stable_and_content_bound():
    row = {"question": "What is 9 * 2?", "answer": "18"}
    assert question_id(3, row) == question_id(3, dict(row))
    assert question_id(3, row).startswith("000003-")
    assert question_id(3, row) != question_id(3, {**row, "answer": "19"})
    assert question_id(3, row) != question_id(4, row)


def test_compare_runs_pairs_by_id():
    a = [make_record(f"q{i}", greedy=gens(GOOD), sampled=gens(GOOD, WRONG)) for i in range(12)]
    b = [make_record(f"q{i}", greedy=gens(WRONG), sampled=gens(WRONG, WRONG)) for i in range(10)]
    b.append(make_record("extra", greedy=gens(GOOD), sampled=gens(GOOD, GOOD)))
    comparison = compare_runs(a, b[::-1], ks=(1, 2), **STATS)  # order does not matter
    assert comparison["num_questions"] == 10
    assert (comparison["num_only_in_a"], comparison["num_only_in_b"]) == (2, 1)
    greedy = comparison["metrics"]["greedy/accuracy_strict"]
    assert greedy["test"] == "mcnemar_exact"
    assert (greedy["only_a"], greedy["only_b"]) == (10, 0)
    assert greedy["p_value"] == pytest.approx(2 / 2**10)
    pass1 = comparison["metrics"]["sampled/pass@1_strict"]
    assert pass1["test"] == "sign_flip"
    assert pass1["difference"] == pytest.approx(0.5)
    np.testing.assert_allclose(pass1["ci_low"], 0.5)  # every question differs by 0.5
    json.dumps(comparison)
