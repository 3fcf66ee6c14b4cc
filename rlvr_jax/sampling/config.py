"""Sampler configuration: how completions are drawn (`config.sampling`), and the tokenizer's ids.

`SamplingConfig` is the config section itself, built and validated by the strict config
builder before any model loads; `SpecialTokens` holds what only the tokenizer knows (its
stop and pad ids). Both are hashable: they are static arguments of the jitted sampler.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    """How completions are drawn (`config.sampling`)."""

    num_samples: int  # G: completions per prompt; the prompt is prefilled once, cache repeated
    max_new_tokens: int  # L: completion length budget
    temperature: float  # 0 = greedy (argmax); else logits are divided by it before filtering
    top_k: int  # 0 = off
    top_p: float  # 1.0 = off (nucleus filtering)
    extra_stop_token_ids: tuple[int, ...]  # stop ids in addition to the tokenizer's
    # Prompts are left-padded to the smallest bucket that fits, so each bucket compiles once.
    prompt_buckets: tuple[int, ...]

    def __post_init__(self):
        object.__setattr__(self, "extra_stop_token_ids", tuple(self.extra_stop_token_ids))
        object.__setattr__(self, "prompt_buckets", tuple(self.prompt_buckets))
        if self.num_samples < 1:
            raise ValueError(f"sampling.num_samples must be >= 1, got {self.num_samples}")
        if self.max_new_tokens < 1:
            raise ValueError(f"sampling.max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"sampling.temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"sampling.top_k must be >= 0 (0 disables), got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"sampling.top_p must be in (0, 1], got {self.top_p}")
        buckets = self.prompt_buckets
        if not buckets or list(buckets) != sorted(buckets) or buckets[0] < 1:
            raise ValueError(
                f"sampling.prompt_buckets must be a non-empty increasing tuple of positive "
                f"lengths, got {buckets}"
            )

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def samples_from_policy(self) -> bool:
        """Temperature 1 and no filtering: the sampled distribution is the policy itself."""
        return self.temperature == 1.0 and self.top_k == 0 and self.top_p == 1.0


@dataclasses.dataclass(frozen=True)
class SpecialTokens:
    """The tokenizer's ids the sampler needs (`run_setup.special_tokens` reads them)."""

    stop_token_ids: tuple[int, ...]  # a sampled stop token ends its row (kept, mask 1)
    pad_token_id: int  # written after a row has stopped (mask 0), and as left padding

    def __post_init__(self):
        object.__setattr__(self, "stop_token_ids", tuple(int(t) for t in self.stop_token_ids))
