"""Host-side prompt batching: left padding to a length bucket."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def bucket_length(length: int, buckets: Sequence[int]) -> int:
    for bucket in buckets:
        if length <= bucket:
            return bucket
    raise ValueError(
        f"prompt of {length} tokens is longer than the largest of sampling.prompt_buckets "
        f"{tuple(buckets)}; add a larger bucket or shorten the prompt"
    )


def left_pad(
    prompts: Sequence[Sequence[int]],
    buckets: Sequence[int],
    pad_id: int,
    longest: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Token ids [B, P] and mask [B, P], left-padded to the bucket of the longest prompt
    (or of `longest`, when processes must agree on it: the longest over all of them)."""
    if not prompts:
        raise ValueError("no prompts to sample from")
    if any(len(p) == 0 for p in prompts):
        raise ValueError("empty prompt: every prompt needs at least one token")
    longest = max(len(p) for p in prompts) if longest is None else longest
    P = bucket_length(longest, buckets)
    tokens = np.full((len(prompts), P), pad_id, np.int32)
    mask = np.zeros((len(prompts), P), np.int32)
    for row, prompt in enumerate(prompts):
        tokens[row, P - len(prompt) :] = prompt
        mask[row, P - len(prompt) :] = 1
    return tokens, mask
