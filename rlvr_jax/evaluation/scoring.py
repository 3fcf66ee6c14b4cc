"""Per-question records and the metrics computed from them.

Shape letters: Q questions, A sampled completions (attempts) per question.

A record is the JSON-ready result for one question, one line of the per-question
JSONL; every metric is computed from records alone, so a resumed run summarizes
exactly as an uninterrupted one:

    {"id": str, "question": str, "answer": str,
     "greedy":  {<completion fields>} | None,   # lists of length 1
     "sampled": {<completion fields>} | None}   # lists of length A, in sampling order
    completion fields: completions, lengths (tokens), truncated (no stop token),
        answer_strict, answer_lenient (what each completion proposes: the verifier's
        `answers`), vote_strict, vote_lenient (the verifier's `vote_key` of it, None =
        abstain), correct_strict, correct_lenient (the verifier's verdicts), format_ok
        (the verifier's `format_ok`)

Everything task-specific comes from a `TaskVerifier`: the run's `rewards.correctness`
verifier (`rewards.registry.Verifier`) with its params and the markers bound, called
with every row field of the question (`verifier_for`), so evaluation and training agree
on what "correct" means, and maj@k votes on what the task says answers are (GSM8K on the
canonical number, countdown on the expression's value).

Per-question scores (`question_scores`), each a float64 array [Q], summarized as a
mean with a bootstrap interval over questions (`summarize`):
    greedy/accuracy_strict, greedy/accuracy_lenient   greedy pass@1 (0/1)
    greedy/format_rate, greedy/length_mean, greedy/truncation_rate
    sampled/pass@{k}_strict, sampled/pass@{k}_lenient  unbiased pass@k, each k in ks
    sampled/maj@{k}_strict, sampled/maj@{k}_lenient    first-k majority vote, each k > 1
    sampled/format_rate, sampled/length_mean, sampled/truncation_rate
maj@1 is left out: it is the first sample's verdict, a noisier pass@1. Rates and means
over samples are per-question means, then averaged over questions (every question has
the same A, so this is also the mean over all completions).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rlvr_jax.evaluation.estimators import maj_at_k, pass_at_k
from rlvr_jax.evaluation.stats import bootstrap_ci, paired_comparison
from rlvr_jax.markers import Markers
from rlvr_jax.rewards.config import RewardsConfig
from rlvr_jax.rewards.extraction import EXTRACTION_MODES
from rlvr_jax.rewards.registry import VERIFIER_ARGS, Verifier, get_verifier

Record = dict[str, Any]

SOURCES = ("greedy", "sampled")
UNIT_FRACTION = "fraction"  # a rate or accuracy in [0, 1]
UNIT_TOKENS = "tokens"


@dataclasses.dataclass(frozen=True)
class Generations:
    """Decoded completions of one question, with the sampler's token counts.

    texts: the completions, in sampling order; lengths: generated tokens of each
    (`Completions.lengths`); truncated: whether each hit max_new_tokens without a stop
    token (`Completions.truncated`); correct: the rollout's verdicts under the verifier's
    configured mode (`RewardOutput.correct`), or None to have the verifier compute them.
    """

    texts: tuple[str, ...]
    lengths: tuple[int, ...]
    truncated: tuple[bool, ...]
    correct: tuple[bool, ...] | None = None

    def __post_init__(self) -> None:
        texts, lengths, truncated = tuple(self.texts), tuple(self.lengths), tuple(self.truncated)
        if not texts:
            raise ValueError("Generations: at least one completion is needed")
        if not len(texts) == len(lengths) == len(truncated):
            raise ValueError(
                f"Generations: {len(texts)} texts, {len(lengths)} lengths, "
                f"{len(truncated)} truncated flags; they must match"
            )
        if self.correct is not None and len(self.correct) != len(texts):
            raise ValueError(f"Generations: {len(self.correct)} verdicts for {len(texts)} texts")
        if not all(isinstance(text, str) for text in texts):
            raise ValueError("Generations: texts must be strings (decoded completions)")
        object.__setattr__(self, "texts", texts)
        object.__setattr__(self, "lengths", tuple(int(x) for x in lengths))
        object.__setattr__(self, "truncated", tuple(bool(x) for x in truncated))
        if self.correct is not None:
            object.__setattr__(self, "correct", tuple(bool(x) for x in self.correct))


@dataclasses.dataclass(frozen=True)
class TaskVerifier:
    """A registered `Verifier` with the run's params and markers bound (`verifier_for`).

    `mode` is the extraction mode the correctness reward is configured with (the one
    whose verdicts `Generations.correct` may carry); evaluation reports both modes.
    """

    name: str
    verifier: Verifier
    params: Mapping[str, Any]  # the correctness reward's params, `mode` excluded
    mode: str
    markers: Markers

    def judge(
        self, texts: Sequence[str], row: Mapping[str, Any], known: Sequence[bool] | None
    ) -> dict[str, list]:
        """answer_/vote_/correct_<mode> and format_ok for one question's completions.

        `row` is the question's dataset row: its fields go to the verifier, repeated for
        each completion. `known`: verdicts under `self.mode` already computed (or None).
        """
        texts = list(texts)
        fields = {
            key: [value] * len(texts) for key, value in row.items() if key not in VERIFIER_ARGS
        }
        out: dict[str, list] = {}
        for mode in EXTRACTION_MODES:
            answers = self.verifier.answers(texts, **fields, markers=self.markers, mode=mode)
            out[f"answer_{mode}"] = list(answers)
            out[f"vote_{mode}"] = [
                None if answer is None else self.verifier.vote_key(answer) for answer in answers
            ]
        for mode in EXTRACTION_MODES:
            if mode == self.mode and known is not None:
                verdicts = list(known)
            else:
                verdicts = self.verifier.correct(
                    texts, **{**fields, **self.params}, markers=self.markers, mode=mode
                )
            if len(verdicts) != len(texts):
                raise ValueError(
                    f"verifier {self.name!r} returned {len(verdicts)} verdicts for "
                    f"{len(texts)} texts"
                )
            out[f"correct_{mode}"] = [bool(v) for v in verdicts]
        out["format_ok"] = [bool(self.verifier.format_ok(text, self.markers)) for text in texts]
        return out


def correctness_mode(config: RewardsConfig) -> str:
    """'strict' or 'lenient': the mode the correctness reward is configured with, else the
    default of its verifier's own `mode` parameter."""
    params = config.correctness_params()
    if "mode" in params:
        return str(params["mode"])
    _, verifier = get_verifier(config.correctness)
    return str(inspect.signature(verifier.correct).parameters["mode"].default)


def verifier_for(config: RewardsConfig, markers: Markers) -> TaskVerifier:
    """The training run's correctness verifier (`rewards.correctness`) with its params bound.

    Its params come from the first `rewards.fns` entry of that reward
    (`RewardsConfig.correctness_params`); `mode` is left free, since evaluation reports
    both strict and lenient extraction.
    """
    _, verifier = get_verifier(config.correctness)
    params = {key: value for key, value in config.correctness_params().items() if key != "mode"}
    return TaskVerifier(config.correctness, verifier, params, correctness_mode(config), markers)


def question_id(index: int, row: Mapping[str, Any]) -> str:
    """A stable id for the `index`-th eval row: "<index>-<sha1(question, answer)[:10]>".

    The hash makes a resumed run fail loudly instead of mixing results when the rows
    changed order or content, while two identical rows still get distinct ids.
    """
    digest = hashlib.sha1(f"{row['question']}\x00{row['answer']}".encode()).hexdigest()
    return f"{index:06d}-{digest[:10]}"


def score_generations(
    generations: Generations, row: Mapping[str, Any], verifier: TaskVerifier
) -> dict[str, list]:
    """The completion fields of a record (module docstring) for one question's completions."""
    return {
        "completions": list(generations.texts),
        "lengths": list(generations.lengths),
        "truncated": list(generations.truncated),
        **verifier.judge(generations.texts, row, generations.correct),
    }


def score_question(
    *,
    question_id: str,
    row: Mapping[str, Any],
    greedy: Generations | None,
    sampled: Generations | None,
    verifier: TaskVerifier,
) -> Record:
    """The record (module docstring) of one question: `row` needs `question` and `answer`,
    and every field the verifier reads (countdown: `numbers`, `target`).

    `greedy` holds one completion (temperature 0); `sampled` the A samples. Either may
    be None when the run does not generate it, not both.
    """
    if greedy is None and sampled is None:
        raise ValueError(f"question {question_id}: neither greedy nor sampled completions")
    if greedy is not None and len(greedy.texts) != 1:
        raise ValueError(f"question {question_id}: greedy must hold one completion")
    return {
        "id": question_id,
        "question": row["question"],
        "answer": str(row["answer"]),
        **{
            source: None if generations is None else score_generations(generations, row, verifier)
            for source, generations in zip(SOURCES, (greedy, sampled), strict=True)
        },
    }


def _source_layout(records: Sequence[Record], source: str) -> int:
    """Completions per question for `source` (0 when absent); must be the same for all."""
    counts = {0 if r[source] is None else len(r[source]["completions"]) for r in records}
    if len(counts) != 1:
        raise ValueError(
            f"records: every question needs the same number of {source} completions, "
            f"got {sorted(counts)}"
        )
    return counts.pop()


def _per_question_means(records: Sequence[Record], source: str, field: str) -> np.ndarray:
    return np.asarray([np.mean(r[source][field]) for r in records], dtype=np.float64)


def metric_unit(name: str) -> str:
    """`tokens` for the length metrics, else `fraction`."""
    return UNIT_TOKENS if name.endswith("length_mean") else UNIT_FRACTION


def question_scores(records: Sequence[Record], *, ks: Sequence[int]) -> dict[str, np.ndarray]:
    """Per-question scores [Q] by metric name, in table order (module docstring).

    Every record must have the same layout: greedy present for all or none, and the
    same A sampled completions. `ks` are the pass@k / maj@k sizes, 1 <= k <= A; with
    no sampled completions (A = 0, greedy-only evaluation) there is no pass@k or maj@k
    and `ks` is not used.
    """
    if not records:
        raise ValueError("records: nothing to summarize")
    has_greedy = _source_layout(records, "greedy") > 0
    num_samples = _source_layout(records, "sampled")
    bad_ks = [k for k in ks if not 1 <= k <= num_samples]
    if num_samples and bad_ks:
        raise ValueError(f"eval.ks: {bad_ks} not in [1, {num_samples} sampled completions]")
    scores: dict[str, np.ndarray] = {}
    if has_greedy:
        for mode in EXTRACTION_MODES:
            scores[f"greedy/accuracy_{mode}"] = _per_question_means(
                records, "greedy", f"correct_{mode}"
            )
    if num_samples:
        num_correct = {
            mode: np.asarray([sum(r["sampled"][f"correct_{mode}"]) for r in records], np.int64)
            for mode in EXTRACTION_MODES
        }
        for k in ks:
            for mode in EXTRACTION_MODES:
                scores[f"sampled/pass@{k}_{mode}"] = pass_at_k(num_samples, num_correct[mode], k)
        for k in ks:
            if k == 1:
                continue
            for mode in EXTRACTION_MODES:
                votes = [r["sampled"][f"vote_{mode}"] for r in records]
                correct = [r["sampled"][f"correct_{mode}"] for r in records]
                scores[f"sampled/maj@{k}_{mode}"] = maj_at_k(votes, correct, k)
    for source, present in zip(SOURCES, (has_greedy, num_samples > 0), strict=True):
        if present:
            scores[f"{source}/format_rate"] = _per_question_means(records, source, "format_ok")
            scores[f"{source}/length_mean"] = _per_question_means(records, source, "lengths")
            scores[f"{source}/truncation_rate"] = _per_question_means(records, source, "truncated")
    return scores


def summarize(
    records: Sequence[Record],
    *,
    ks: Sequence[int],
    confidence: float,
    num_resamples: int,
    seed: int,
) -> dict[str, Any]:
    """Dataset metrics: mean over questions with a percentile bootstrap interval.

    Returns a JSON-ready dict with `num_questions`, `num_samples` (A, 0 if none),
    `has_greedy`, `ks` (those used: none when A = 0), `confidence`, `num_resamples`,
    `seed`, and `metrics`:
    {name: {"mean", "ci_low", "ci_high", "unit"}} for every name of `question_scores`.
    All metrics share the seed, so they use the same resampled questions.
    """
    scores = question_scores(records, ks=ks)
    metrics = {}
    for name, values_Q in scores.items():
        low, high = bootstrap_ci(
            values_Q, confidence=confidence, num_resamples=num_resamples, seed=seed
        )
        metrics[name] = {
            "mean": float(values_Q.mean()),
            "ci_low": low,
            "ci_high": high,
            "unit": metric_unit(name),
        }
    num_samples = _source_layout(records, "sampled")
    return {
        "num_questions": len(records),
        "num_samples": num_samples,
        "has_greedy": _source_layout(records, "greedy") > 0,
        "ks": [int(k) for k in ks] if num_samples else [],
        "confidence": confidence,
        "num_resamples": num_resamples,
        "seed": seed,
        "metrics": metrics,
    }


def flat_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """`summarize` output as flat floats for observers: name, name/ci_low, name/ci_high."""
    flat = {}
    for name, value in summary["metrics"].items():
        flat[name] = value["mean"]
        flat[f"{name}/ci_low"] = value["ci_low"]
        flat[f"{name}/ci_high"] = value["ci_high"]
    return flat


def compare_runs(
    records_a: Sequence[Record],
    records_b: Sequence[Record],
    *,
    ks: Sequence[int],
    confidence: float,
    num_resamples: int,
    seed: int,
) -> dict[str, Any]:
    """Paired comparison of two runs (A - B) on the questions both evaluated, by record id.

    Returns a JSON-ready dict: `num_questions` (paired), `num_only_in_a`,
    `num_only_in_b`, `confidence`, `num_resamples`, `seed`, and `metrics`: for each
    metric both runs report, `stats.paired_comparison` (McNemar's exact test for 0/1
    scores such as greedy accuracy and maj@k, the sign-flip test otherwise) plus `unit`.
    """
    ids_b = {r["id"] for r in records_b}
    ids_a = {r["id"] for r in records_a}
    shared = [r["id"] for r in records_a if r["id"] in ids_b]
    if not shared:
        raise ValueError("compare_runs: the two runs share no question ids")
    by_id_a = {r["id"]: r for r in records_a}
    by_id_b = {r["id"]: r for r in records_b}
    scores_a = question_scores([by_id_a[i] for i in shared], ks=ks)
    scores_b = question_scores([by_id_b[i] for i in shared], ks=ks)
    metrics = {}
    for name in scores_a:
        if name not in scores_b:
            continue
        comparison = paired_comparison(
            scores_a[name],
            scores_b[name],
            confidence=confidence,
            num_resamples=num_resamples,
            seed=seed,
        )
        metrics[name] = {**comparison, "unit": metric_unit(name)}
    return {
        "num_questions": len(shared),
        "num_only_in_a": len(ids_a - ids_b),
        "num_only_in_b": len(ids_b - ids_a),
        "confidence": confidence,
        "num_resamples": num_resamples,
        "seed": seed,
        "metrics": metrics,
    }
