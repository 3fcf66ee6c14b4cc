"""Sampler configuration."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    """How completions are drawn. Hashable: it is a static argument of the jitted sampler."""

    max_new_tokens: int
    # 0.0 means greedy (argmax); otherwise logits are divided by it before filtering.
    temperature: float = 1.0
    # 0 disables top-k filtering.
    top_k: int = 0
    # 1.0 disables nucleus filtering.
    top_p: float = 1.0
    # Completions per prompt (G); the prompt is prefilled once and its cache repeated.
    num_samples: int = 1
    # A sampled stop token ends its row (it is kept, with mask 1, as the last token).
    stop_token_ids: tuple[int, ...] = ()
    # Written after a row has stopped (mask 0 there).
    pad_token_id: int = 0
    # Prompts are left-padded to the smallest bucket that fits, so each bucket compiles once.
    prompt_buckets: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ValueError(f"sampling.max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"sampling.temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"sampling.top_k must be >= 0 (0 disables), got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"sampling.top_p must be in (0, 1], got {self.top_p}")
        if self.num_samples < 1:
            raise ValueError(f"sampling.num_samples must be >= 1, got {self.num_samples}")
        if not self.prompt_buckets or list(self.prompt_buckets) != sorted(self.prompt_buckets):
            raise ValueError(
                f"sampling.prompt_buckets must be a non-empty increasing tuple, "
                f"got {self.prompt_buckets}"
            )

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def samples_from_policy(self) -> bool:
        """Temperature 1 and no filtering: the sampled distribution is the policy itself."""
        return self.temperature == 1.0 and self.top_k == 0 and self.top_p == 1.0
