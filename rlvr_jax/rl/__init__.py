"""RL math: advantage estimators, KL estimators, token aggregation, policy losses.

Shape letters used throughout: B batch rows (= P prompts * G samples, group-major),
T completion time steps, V vocabulary, G group size, P prompts, M micro-batches.
"""
