"""Per-question accuracy estimators from n samples: unbiased pass@k and maj@k.

Shape letters: Q questions, A samples (attempts) per question.

pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code"): the
probability that at least one of k samples drawn without replacement from the n
generated is correct, given that c of the n are correct,

    pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{j = n-c+1}^{n} (1 - k / j)

(1 when n - c < k). It is an unbiased estimate of the model's pass@k on the question;
the dataset score is its mean over questions. The product is computed in log space,
as a difference of one cumulative sum of log1p(-k / j), so it is stable for any n.

maj@k: the majority vote over the answers of the FIRST k samples, scored by the
verifier's verdict on the winning answer. The samples are i.i.d., so the first
k are a random draw of k and the verdict is an unbiased (single-draw) estimate of the
question's maj@k; with n > k the later samples are not used for maj@k.

Vote rule (`majority_index`):
* Answers vote by their key: the task's verifier declares how answers are grouped
  (`rewards.registry.Verifier.vote_key`: GSM8K answers by their canonical number, so
  "$18.00" and "18" agree; countdown expressions by their exact value, so "(25 - 5) * 4"
  and "4 * 20" agree). Evaluation records store the keys (`vote_strict`, ...), so this
  module never needs to know the task.
* None (nothing extracted, or no key) and blank keys abstain: they never win, unless
  every sample abstains, in which case the vote returns None (scored as wrong).
* Ties: among the keys with the highest count, the one whose first occurrence comes
  earliest among the samples wins. With i.i.d. samples this is a uniformly random tie
  break that is also deterministic and reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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


def majority_index(keys: Sequence[str | None]) -> int | None:
    """Index of the sample whose key wins the vote (its first occurrence), or None.

    Rule (module docstring): the most frequent key wins; None and blank keys abstain;
    ties go to the key that appears first; None when all abstain.
    """
    counts: dict[str, int] = {}
    first_index: dict[str, int] = {}
    for index, key in enumerate(keys):
        if key is None or not key.strip():
            continue
        counts[key] = counts.get(key, 0) + 1
        first_index.setdefault(key, index)
    if not counts:
        return None
    winner = max(counts, key=lambda key: (counts[key], -first_index[key]))
    return first_index[winner]


def maj_at_k(
    keys_QA: Sequence[Sequence[str | None]], correct_QA: Sequence[Sequence[bool]], k: int
) -> np.ndarray:
    """maj@k per question: the verdict on the vote winner among the first k samples.

    Args:
      keys_QA: the vote key of each question's samples, in sampling order.
      correct_QA: the verifier's verdict on each of those samples (same shape).
      k: how many of the first samples vote, 1 <= k <= A for every question.

    Returns:
      float64 array [Q] of 0.0 / 1.0: `correct[i]` for the winning sample i (the first
      occurrence of the winning key), 0.0 when every sample abstains.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"maj_at_k: k must be a positive int, got {k!r}")
    if len(keys_QA) != len(correct_QA):
        raise ValueError(f"maj_at_k: {len(keys_QA)} vote lists, {len(correct_QA)} verdicts")
    scores = []
    for keys, correct in zip(keys_QA, correct_QA, strict=True):
        if len(keys) != len(correct):
            raise ValueError(f"maj_at_k: {len(keys)} votes but {len(correct)} verdicts")
        if len(keys) < k:
            raise ValueError(f"maj_at_k: k={k} exceeds the number of samples {len(keys)}")
        index = majority_index(keys[:k])
        scores.append(0.0 if index is None else float(bool(correct[index])))
    return np.asarray(scores, dtype=np.float64)
