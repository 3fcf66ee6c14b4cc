"""KV-cache sampling: batched, jitted generation with the trainer's own parameters."""

from rlvr_jax.sampling.config import SamplingConfig, SpecialTokens
from rlvr_jax.sampling.generate import Completions, generate, generate_padded

__all__ = ["Completions", "SamplingConfig", "SpecialTokens", "generate", "generate_padded"]
