"""RL math: advantage estimators, KL estimators, token aggregation, policy losses.

Shape letters as in the package table (`rlvr_jax/__init__.py`): R rows (= B prompts *
G samples, group-major), L completion tokens, P prompt slots, V vocabulary, M micro-batches.
"""
