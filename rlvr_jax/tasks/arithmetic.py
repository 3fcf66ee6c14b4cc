"""Synthetic integer arithmetic (`data.name="arithmetic"`): "What is 23 + 45?".

Operands are drawn uniformly from [min_value, max_value] and the operator uniformly
from `operators`; division problems are built as (a*b) / b so they divide exactly.
The default is 2-digit addition, 10 <= a, b <= 99. See `synthetic` for the seeding
and the held-out split.
"""

from __future__ import annotations

import operator

import numpy as np

from rlvr_jax.tasks.base import Row, Which, register_dataset
from rlvr_jax.tasks.config import ArithmeticConfig, DataConfig
from rlvr_jax.tasks.synthetic import generate_split

_APPLY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.floordiv}


def make_problem(rng: np.random.Generator, config: ArithmeticConfig) -> tuple[str, Row] | None:
    """One random problem as (key, row), or None when the draw is unusable (b = 0 for '/')."""
    op = config.operators[int(rng.integers(len(config.operators)))]
    a, b = (int(x) for x in rng.integers(config.min_value, config.max_value + 1, size=2))
    if op == "/":
        if b == 0:
            return None
        a = a * b
    result = _APPLY[op](a, b)
    expression = f"{a} {op} {b}"
    row = {
        "question": f"What is {expression}?",
        "answer": str(result),
        "demo_reasoning": f"{expression} = {result}",
        "demo_answer": str(result),
    }
    return expression.replace(" ", ""), row


@register_dataset("arithmetic")
def load_arithmetic(config: DataConfig, which: Which) -> list[Row]:
    params = config.arithmetic
    count = params.num_train if which == "train" else params.num_eval
    return generate_split(
        lambda rng: make_problem(rng, params),
        which, count, params.holdout_fraction, config.seed, "data.arithmetic",
    )  # fmt: skip
