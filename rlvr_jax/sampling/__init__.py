"""KV-cache sampling: batched, jitted generation with the trainer's own parameters."""

from rlvr_jax.sampling.config import SamplingConfig
from rlvr_jax.sampling.generate import Completions, generate, generate_padded

__all__ = ["Completions", "SamplingConfig", "generate", "generate_padded"]
