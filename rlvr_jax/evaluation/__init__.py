"""Evaluation you can trust: pass@k, maj@k, format and extraction rates, intervals, tests.

    verifier = verifier_for(rewards_config, markers)  # the training run's "correct"
    with IncrementalJsonl(path, fingerprint=setup) as out:
        for i, row in enumerate(rows):
            qid = question_id(i, row)
            if qid in out.done_ids:
                continue                                 # finished before a crash
            out.append(score_question(question_id=qid, row=row, greedy=..., sampled=...,
                                      verifier=verifier))
        summary = summarize(out.records, ks=(1, 8), confidence=0.95,
                            num_resamples=10_000, seed=0)
    write_report(json_path, markdown_path, summary=summary, meta=setup)

Modules: `estimators` (pass@k, majority vote, maj@k), `stats` (bootstrap intervals,
McNemar, sign-flip test), `scoring` (records and metrics), `report` (files).
"""

from rlvr_jax.evaluation.estimators import (
    maj_at_k,
    majority_index,
    pass_at_k,
)
from rlvr_jax.evaluation.report import (
    IncrementalJsonl,
    comparison_table,
    markdown_table,
    write_atomic,
    write_comparison,
    write_report,
)
from rlvr_jax.evaluation.scoring import (
    Generations,
    Record,
    TaskVerifier,
    compare_runs,
    correctness_mode,
    flat_metrics,
    question_id,
    question_scores,
    score_generations,
    score_question,
    summarize,
    verifier_for,
)
from rlvr_jax.evaluation.stats import (
    bootstrap_ci,
    bootstrap_means,
    mcnemar_exact,
    paired_comparison,
    sign_flip_pvalue,
)

__all__ = [
    "Generations",
    "IncrementalJsonl",
    "Record",
    "TaskVerifier",
    "bootstrap_ci",
    "bootstrap_means",
    "compare_runs",
    "correctness_mode",
    "comparison_table",
    "flat_metrics",
    "maj_at_k",
    "majority_index",
    "markdown_table",
    "mcnemar_exact",
    "paired_comparison",
    "pass_at_k",
    "question_id",
    "question_scores",
    "score_generations",
    "score_question",
    "sign_flip_pvalue",
    "summarize",
    "verifier_for",
    "write_atomic",
    "write_comparison",
    "write_report",
]
