"""Records and metrics on hand-made completions: strict vs lenient, pass@k, maj@k, rates."""

import json

import numpy as np
import pytest

from rlvr_jax.config_builder import build
from rlvr_jax.evaluation import (
    Generations,
    TaskVerifier,
    compare_runs,
    correctness_mode,
    flat_metrics,
    maj_at_k,
    question_id,
    question_scores,
    score_question,
    summarize,
    verifier_for,
)
from rlvr_jax.markers import DEFAULT_MARKERS, THINK_MARKERS
from rlvr_jax.rewards import RewardsConfig
from rlvr_jax.rewards.answer_match import ANSWER_MATCH_VERIFIER
from rlvr_jax.rewards.countdown import COUNTDOWN_VERIFIER, countdown_correct
from rlvr_jax.tasks.countdown import QUESTION as COUNTDOWN_QUESTION


def rewards(fns, correctness="answer_match") -> RewardsConfig:
    """A RewardsConfig built the way a config file is: through the strict builder."""
    return build(
        RewardsConfig, {"fns": fns, "on_error": "raise", "correctness": correctness}, "rewards"
    )


ANSWER_MATCH = [{"name": "answer_match", "weight": 1.0, "params": {"mode": "strict"}}]
COUNTDOWN = [{"name": "countdown_equation", "weight": 1.0, "params": {"mode": "strict"}}]

VERIFIER = verifier_for(rewards(ANSWER_MATCH), DEFAULT_MARKERS)
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
    # answer_match votes on the canonical answer; None (nothing extracted) abstains.
    assert sampled["vote_strict"] == ["18", "17", None, "18"]
    assert sampled["vote_lenient"] == ["18", "17", "18", "2"]
    assert record["greedy"]["vote_strict"] == [None]
    assert record["greedy"]["vote_lenient"] == ["18"]
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
        verifier=verifier_for(rewards(ANSWER_MATCH), THINK_MARKERS),
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
    verifier = verifier_for(rewards(ANSWER_MATCH), DEFAULT_MARKERS)
    assert isinstance(verifier, TaskVerifier)
    assert verifier.name == "answer_match"
    assert verifier.verifier is ANSWER_MATCH_VERIFIER
    assert "mode" not in verifier.params  # evaluation sets the mode itself
    assert verifier.mode == "strict"  # ... and remembers the configured one
    assert verifier.markers == DEFAULT_MARKERS
    judged = verifier.judge([GOOD, OUTSIDE], {"question": "?", "answer": "18"}, None)
    assert judged["correct_strict"] == [True, False]
    assert judged["correct_lenient"] == [True, True]
    # Params other than `mode` are bound and reach the verifier: countdown's `use_all`.
    row = {"question": "?", "answer": "80", "numbers": [25, 5, 4, 20], "target": 80}
    partial_use = "<reasoning>r</reasoning><answer>4 * 20</answer>"
    for use_all, expected in ((False, [True]), (True, [False])):
        fns = [{"name": "countdown_equation", "params": {"mode": "strict", "use_all": use_all}}]
        countdown = verifier_for(rewards(fns, "countdown_equation"), DEFAULT_MARKERS)
        assert countdown.verifier is COUNTDOWN_VERIFIER
        assert countdown.params == {"use_all": use_all}
        assert countdown.judge([partial_use], row, None)["correct_strict"] == expected


def test_known_verdicts_are_kept_for_the_configured_mode_only():
    row = {"question": "?", "answer": "18"}
    # The rollout's verdicts (strict here) are taken as given, even when they disagree
    # with the verifier; the other mode is always computed.
    judged = VERIFIER.judge([GOOD, OUTSIDE], row, [False, True])
    assert judged["correct_strict"] == [False, True]
    assert judged["correct_lenient"] == [True, True]
    lenient = verifier_for(
        rewards([{"name": "answer_match", "params": {"mode": "lenient"}}]), DEFAULT_MARKERS
    )
    judged = lenient.judge([GOOD, OUTSIDE], row, [False, False])
    assert judged["correct_strict"] == [True, False]
    assert judged["correct_lenient"] == [False, False]
    record = score_question(
        question_id="q",
        row=row,
        greedy=None,
        sampled=Generations([GOOD, OUTSIDE], [1, 2], [False, False], correct=[False, True]),
        verifier=VERIFIER,
    )
    assert record["sampled"]["correct_strict"] == [False, True]
    with pytest.raises(ValueError, match="verdicts"):
        Generations([GOOD], [1], [False], correct=[True, False])


def test_correctness_mode_is_configured_or_the_verifiers_default():
    lenient = rewards([{"name": "answer_match", "params": {"mode": "lenient"}}])
    assert correctness_mode(lenient) == "lenient"
    unset = rewards([{"name": "countdown_equation"}], "countdown_equation")
    assert correctness_mode(unset) == "strict"  # countdown_correct's own default
    assert verifier_for(unset, DEFAULT_MARKERS).mode == "strict"


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


def countdown_row(numbers, target):
    """A countdown eval row with the fields rlvr_jax/tasks/countdown.py gives it."""
    return {
        "question": COUNTDOWN_QUESTION.format(numbers=numbers, target=target),
        "answer": str(target),
        "numbers": numbers,
        "target": target,
        "demo_reasoning": "(25 - 5) * 4 = 80",
        "demo_answer": "(25 - 5) * 4",
    }


def equation(expression):
    return f"<reasoning>try it</reasoning><answer>{expression}</answer>"


def test_countdown_maj_at_k_votes_on_expression_values():
    verifier = verifier_for(rewards(COUNTDOWN, "countdown_equation"), DEFAULT_MARKERS)
    assert verifier.verifier is COUNTDOWN_VERIFIER
    row = countdown_row([25, 5, 4, 20], 80)
    expressions = [
        "25 + 5 + 4 + 20",  # 54: wrong
        "(25 - 5) * 4",  # 80: right
        "4 * 20",  # 80: right, other text
        "25 + 5 + 4 + 20",  # 54 again: the only repeated text
        "20 * 4",  # 80: right, other text again
        "40 * 2",  # 80, but 40 and 2 are not among the numbers: wrong
    ]
    record = score_question(
        question_id="cd0",
        row=row,
        greedy=gens(equation("40 * 2")),
        sampled=gens(*(equation(e) for e in expressions)),
        verifier=verifier,
    )
    sampled = record["sampled"]
    assert record["answer"] == "80"
    assert sampled["answer_strict"] == expressions
    assert sampled["vote_strict"] == ["54", "80", "80", "54", "80", "80"]
    assert sampled["vote_lenient"] == sampled["vote_strict"]  # the only arithmetic in the text
    # Verdicts use the row's numbers (40 * 2 is 80 but not made of them) and target.
    assert sampled["correct_strict"] == [False, True, True, False, True, False]
    assert sampled["correct_lenient"] == sampled["correct_strict"]
    assert sampled["format_ok"] == [True] * 6
    assert record["greedy"]["vote_strict"] == ["80"]
    assert record["greedy"]["correct_strict"] == [False]
    # The same completions against another row: its target decides the verdicts.
    other = score_question(
        question_id="cd1",
        row=countdown_row([25, 5, 4, 20], 54),
        greedy=None,
        sampled=gens(*(equation(e) for e in expressions)),
        verifier=verifier,
    )
    assert other["sampled"]["correct_strict"] == [True, False, False, True, False, False]
    assert other["sampled"]["vote_strict"] == sampled["vote_strict"]
    json.dumps(record)

    scores = question_scores([record], ks=(1, 3, 4, 5, 6))
    # k=3: 54, 80, 80 -> 80 wins (first at index 1, right). By text all three differ and
    # the tie goes to the first, "25 + 5 + 4 + 20": wrong.
    # k=4: 54 and 80 twice each, the tie goes to 54 (first): wrong either way.
    # k=5 and 6: 80 three / four times beats 54 twice; by text, "25 + 5 + 4 + 20" (the
    # only text seen twice) would win: wrong.
    expected = {3: 1.0, 4: 0.0, 5: 1.0, 6: 1.0}
    by_text = {3: 0.0, 4: 0.0, 5: 0.0, 6: 0.0}
    for k, value in expected.items():
        np.testing.assert_array_equal(scores[f"sampled/maj@{k}_strict"], [value])
        np.testing.assert_array_equal(scores[f"sampled/maj@{k}_lenient"], [value])
        text_votes = maj_at_k([sampled["answer_strict"]], [sampled["correct_strict"]], k)
        np.testing.assert_array_equal(text_votes, [by_text[k]])
    np.testing.assert_allclose(scores["sampled/pass@1_strict"], [3 / 6])
    np.testing.assert_array_equal(scores["greedy/accuracy_strict"], [0.0])


def test_countdown_verdicts_equal_the_reward_verifier_on_the_row_fields():
    verifier = verifier_for(rewards(COUNTDOWN, "countdown_equation"), DEFAULT_MARKERS)
    row = countdown_row([3, 7, 9], 30)
    texts = [equation("3 * 7 + 9"), equation("9 * 3 + 7"), "3 * (9 + 1) = 30", equation("1 / 0")]
    record = score_question(
        question_id="cd", row=row, greedy=None, sampled=gens(*texts), verifier=verifier
    )
    for mode in ("strict", "lenient"):
        expected = countdown_correct(
            texts, numbers=[row["numbers"]] * 4, target=[row["target"]] * 4, mode=mode
        )
        assert record["sampled"][f"correct_{mode}"] == expected
    assert record["sampled"]["correct_strict"] == [True, False, False, False]
    assert record["sampled"]["vote_strict"] == ["30", "34", None, None]  # 1 / 0 has no value
