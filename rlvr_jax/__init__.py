"""rlvr_jax: Reinforcement Learning from Verifiable Rewards for Hugging Face decoders, in JAX.

Shape letters, one meaning each across the package (an array's name ends with its axes,
``logp_RL`` is [R, L]):

    B  prompts (distinct; the model's batch axis when it runs prompts, e.g. prefill)
    G  samples per prompt (the GRPO group, ``sampling.num_samples``)
    R  rows = B * G, group-major: row r is sample r % G of prompt r // G
    C  preference pairs of online DPO (B * ``rl.dpo.pairs_per_prompt``, prompt-major)
    M  micro-batches of a train step (``rl.num_microbatches``)
    P  prompt slots (left-padded prompt length, a ``sampling.prompt_buckets`` entry)
    L  completion tokens (``sampling.max_new_tokens``)
    T  time steps of one model call (P + L for a teacher-forced row, 1 when decoding)
    S  KV-cache slots
    D  model width, F MLP width, N query heads, K kv heads, H head dim, V vocabulary
    Q  evaluation questions;  N  samples per question (evaluation only)

Layers have no letter: per-layer values are tuples (``KVCache.k[layer]``).
"""

__version__ = "0.1.0"
