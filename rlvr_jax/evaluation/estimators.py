"""Per-question accuracy estimators from n samples: unbiased pass@k and maj@k.

Shape letters: Q questions, N samples per question.

pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code"): the
probability that at least one of k samples drawn without replacement from the n
generated is correct, given that c of the n are correct,

    pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{j = n-c+1}^{n} (1 - k / j)

(1 when n - c < k). It is an unbiased estimate of the model's pass@k on the question;
the dataset score is its mean over questions. The product is computed in log space,
as a difference of one cumulative sum of log1p(-k / j), so it is stable for any n.

maj@k: the majority vote over the extracted answers of the FIRST k samples, scored
by the verifier's verdict on the winning answer. The samples are i.i.d., so the first
k are a random draw of k and the verdict is an unbiased (single-draw) estimate of the
question's maj@k; with n > k the later samples are not used for maj@k.

Vote rule (`majority_index`):
* Answers are grouped by `vote_key`: one number in canonical form ("$18.00" and "18"
  agree, "3/4" and "0.75" agree), else the text with whitespace collapsed and case
  folded. This is the equality `rewards.answers_equal` uses, so all the answers of a
  group get the same verdict from `answer_match`.
* None (nothing extracted) and blank answers abstain: they never win, unless every
  answer abstains, in which case the vote returns None (scored as wrong).
* Ties: among the answers with the highest count, the one whose first occurrence
  comes earliest among the samples wins. With i.i.d. samples this is a uniformly
  random tie break that is also deterministic and reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rlvr_jax.rewards.numbers import normalize_number


def pass_at_k(num_samples: np.ndarray | int, num_correct: np.ndarray | int, k: int) -> np.ndarray:
    """Unbiased pass@k per question: 1 - C(n - c, k) / C(n, k), see the module docstring.

    Args:
      num_samples: n, samples generated per question; int or int array [Q].
      num_correct: c, how many of them are correct; int or int array [Q], 0 <= c <= n.
      k: subset size, 1 <= k <= n for every question.

    Returns:
      float64 array broadcast from n and c ([Q], or 0-d for scalars), values in [0, 1];
      exactly 0 where c == 0 and exactly 1 where n - c < k.
    """
    n_Q, c_Q = np.broadcast_arrays(np.asarray(num_samples), np.asarray(num_correct))
    if not (np.issubdtype(n_Q.dtype, np.integer) and np.issubdtype(c_Q.dtype, np.integer)):
        raise ValueError("pass_at_k: num_samples and num_correct must be integers")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"pass_at_k: k must be a positive int, got {k!r}")
    if np.any(c_Q < 0) or np.any(c_Q > n_Q):
        raise ValueError("pass_at_k: need 0 <= num_correct <= num_samples")
    if np.any(n_Q < k):
        raise ValueError(f"pass_at_k: k={k} exceeds the number of samples {int(n_Q.min())}")
    n_Q, c_Q = n_Q.astype(np.int64), c_Q.astype(np.int64)
    max_n = int(n_Q.max()) if n_Q.size else 0
    # log_cum[m] = sum_{j=k+1}^{m} log(1 - k/j); only j > k ever enters a product below.
    j = np.arange(1, max_n + 1, dtype=np.float64)
    log_terms = np.log1p(-k / np.maximum(j, k + 1)) * (j > k)
    log_cum = np.concatenate([[0.0], np.cumsum(log_terms)])
    num_wrong = n_Q - c_Q
    all_wrong_prob = np.where(num_wrong >= k, np.exp(log_cum[n_Q] - log_cum[num_wrong]), 0.0)
    return 1.0 - all_wrong_prob


def vote_key(answer: str) -> str:
    """The key answers are grouped by: canonical number, else whitespace-collapsed casefold."""
    number = normalize_number(answer)
    return number if number is not None else " ".join(answer.split()).casefold()


def majority_index(answers: Sequence[str | None]) -> int | None:
    """Index of the sample whose answer wins the vote (its first occurrence), or None.

    Rule (module docstring): the most frequent `vote_key` wins; None and blank answers
    abstain; ties go to the answer that appears first; None when all abstain.
    """
    counts: dict[str, int] = {}
    first_index: dict[str, int] = {}
    for index, answer in enumerate(answers):
        if answer is None or not answer.strip():
            continue
        key = vote_key(answer)
        counts[key] = counts.get(key, 0) + 1
        first_index.setdefault(key, index)
    if not counts:
        return None
    winner = max(counts, key=lambda key: (counts[key], -first_index[key]))
    return first_index[winner]


def majority_vote(answers: Sequence[str | None]) -> str | None:
    """The winning answer (as first written among the samples), or None; see `majority_index`."""
    index = majority_index(answers)
    return None if index is None else answers[index]


def maj_at_k(
    answers_QN: Sequence[Sequence[str | None]], correct_QN: Sequence[Sequence[bool]], k: int
) -> np.ndarray:
    """maj@k per question: the verdict on the vote winner among the first k samples.

    Args:
      answers_QN: extracted answers of each question's samples, in sampling order.
      correct_QN: the verifier's verdict on each of those samples (same shape).
      k: how many of the first samples vote, 1 <= k <= N for every question.

    Returns:
      float64 array [Q] of 0.0 / 1.0: `correct[i]` for the winning sample i (the first
      occurrence of the winning answer), 0.0 when every answer abstains.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"maj_at_k: k must be a positive int, got {k!r}")
    if len(answers_QN) != len(correct_QN):
        raise ValueError(f"maj_at_k: {len(answers_QN)} answer lists, {len(correct_QN)} verdicts")
    scores = []
    for answers, correct in zip(answers_QN, correct_QN, strict=True):
        if len(answers) != len(correct):
            raise ValueError(f"maj_at_k: {len(answers)} answers but {len(correct)} verdicts")
        if len(answers) < k:
            raise ValueError(f"maj_at_k: k={k} exceeds the number of samples {len(answers)}")
        index = majority_index(answers[:k])
        scores.append(0.0 if index is None else float(bool(correct[index])))
    return np.asarray(scores, dtype=np.float64)
