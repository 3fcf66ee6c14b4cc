"""rlvr_jax: Reinforcement Learning from Verifiable Rewards for Hugging Face decoders, in JAX."""

__version__ = "0.1.0"
