"""Countdown (as in TinyZero, `data.name="countdown"`): reach a target with given numbers.

An instance is built backwards so it is always solvable: draw the numbers, combine
them in a random binary tree with random operators, and keep the instance if the
value is an integer in [min_target, max_target]. The hidden solution uses every
number exactly once, so the instance is solvable under both reward rules (at most
once, or all exactly once). Rows carry `numbers: list[int]` and `target: int`.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from rlvr_jax.rewards.countdown import check_equation
from rlvr_jax.tasks.base import Row, Which, register_dataset
from rlvr_jax.tasks.config import CountdownConfig, DataConfig
from rlvr_jax.tasks.synthetic import generate_split

QUESTION = (
    "Using the numbers {numbers}, create an equation that equals {target}. You can use "
    "basic arithmetic operations (+, -, *, /) and each number can only be used once."
)


def _combine(left: Fraction, right: Fraction, op: str) -> Fraction | None:
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    return None if right == 0 else left / right


def _pick(x: float, n: int) -> int:
    """Index in [0, n) from a uniform x in [0, 1) (min() guards float rounding up to n)."""
    return min(int(x * n), n - 1)


def make_instance(rng: np.random.Generator, config: CountdownConfig) -> tuple[str, Row] | None:
    """One random solvable instance as (key, row), or None when the draw misses the target range."""
    # One vectorized draw per instance: per-call overhead of numpy dominates otherwise.
    max_count, ops = config.max_count, config.operators
    u = rng.random(1 + max_count + 3 * (max_count - 1))
    count = config.min_count + _pick(u[0], max_count - config.min_count + 1)
    span = config.max_number - config.min_number + 1
    numbers = [config.min_number + _pick(x, span) for x in u[1 : 1 + count]]
    picks = iter(u[1 + max_count :])
    items = [(Fraction(n), str(n)) for n in numbers]
    while len(items) > 1:
        i = _pick(next(picks), len(items))
        j = _pick(next(picks), len(items) - 1)
        j += j >= i  # a second, different item
        op = ops[_pick(next(picks), len(ops))]
        value = _combine(items[i][0], items[j][0], op)
        if value is None:
            return None
        merged = (value, f"({items[i][1]} {op} {items[j][1]})")
        items = [item for k, item in enumerate(items) if k not in (i, j)] + [merged]
    value, expression = items[0]
    if value.denominator != 1 or not config.min_target <= value <= config.max_target:
        return None
    target, expression = int(value), expression[1:-1]
    if check_equation(expression, numbers, target, use_all=True) != "correct":
        raise AssertionError(f"generated an unsolved instance {numbers} -> {target}: {expression}")
    row = {
        "question": QUESTION.format(numbers=numbers, target=target),
        "answer": str(target),
        "numbers": numbers,
        "target": target,
        "demo_reasoning": f"{expression} = {target}",
        "demo_answer": expression,
    }
    return f"{sorted(numbers)}->{target}", row


@register_dataset("countdown")
def load_countdown(config: DataConfig, which: Which) -> list[Row]:
    params = config.countdown
    count = params.num_train if which == "train" else params.num_eval
    return generate_split(
        lambda rng: make_instance(rng, params),
        which, count, params.holdout_fraction, config.seed, "data.countdown",
    )  # fmt: skip
