"""`countdown_equation`: does the answer combine the given numbers into the target?

The equation is read from the strict answer span (answer block, else `####`, else
`\\boxed{}`), or in lenient mode from the last run of arithmetic characters in the
text. Anything after the first '=' is ignored ("(25 - 5) * 4 = 80" is read as
"(25 - 5) * 4"); unicode '×', '÷', '−' and LaTeX `\\times`, `\\div`, `\\cdot` are
accepted.

Safety: the expression is never passed to `eval`. It must be at most
`MAX_EXPRESSION_CHARS` characters of digits, whitespace and `+ - * / ( )`; it is parsed
with `ast` and every node must be on a whitelist (integer literals, binary + - * /,
parentheses). So `__import__('os')` fails the character check and `2**99999` fails
the whitelist (no power), both before any arithmetic. Values are exact `Fraction`s.

Scoring: `correct` when every literal is one of `numbers`, each given number is used
at most once (exactly once if `use_all`, as in TinyZero), and the value equals
`target`; `wrong` for a well-formed arithmetic expression that breaks a rule or misses
the target (TinyZero's "format score" is wrong=0.1); `invalid` when no expression is
found or it is not safe arithmetic. One verdict per completion (`countdown_verdicts`)
gives both the score and the verifier's bool (`countdown_correct`).

Evaluation: the verifier proposes the candidate expression (`countdown_answers`), and
maj@k groups expressions by their exact value (`countdown_vote_key`), not by their text.
"""

from __future__ import annotations

import ast
import operator
import re
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from typing import Literal

from rlvr_jax.markers import DEFAULT_MARKERS, Markers
from rlvr_jax.rewards.extraction import ExtractionMode, answer_span, check_mode
from rlvr_jax.rewards.format import follows_layout
from rlvr_jax.rewards.registry import Verifier, register_reward

MAX_EXPRESSION_CHARS = 200
Verdict = Literal["correct", "wrong", "invalid"]

_BINARY_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
_REPLACEMENTS = {
    "\u00d7": "*",
    "\u00f7": "/",
    "\u2212": "-",
    "\\times": "*",
    "\\div": "/",
    "\\cdot": "*",
    "\\left": "",
    "\\right": "",
}
_SAFE_CHARS = re.compile(r"[\d\s+\-*/()]+")
_ARITHMETIC_RUN = re.compile(r"[\d\s+\-*/()\u00d7\u00f7\u2212]*\d[\d\s+\-*/()\u00d7\u00f7\u2212]*")


class UnsafeExpression(ValueError):
    """The text is not a short arithmetic expression over integer literals."""


def _normalize(expression: str) -> str:
    for old, new in _REPLACEMENTS.items():
        expression = expression.replace(old, new)
    return expression.split("=", 1)[0].strip().rstrip(".").strip()


def parse_expression(expression: str) -> ast.expr:
    """Parse and whitelist-check an arithmetic expression; raises `UnsafeExpression`."""
    expression = _normalize(expression)
    if not expression or len(expression) > MAX_EXPRESSION_CHARS:
        raise UnsafeExpression(f"expression empty or longer than {MAX_EXPRESSION_CHARS} chars")
    if not _SAFE_CHARS.fullmatch(expression):
        raise UnsafeExpression(f"characters outside digits, space and + - * / ( ): {expression!r}")
    try:
        tree = ast.parse(expression, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise UnsafeExpression(f"not an expression: {expression!r}") from e
    for node in ast.walk(tree.body):
        if isinstance(node, ast.BinOp):
            if not isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
                raise UnsafeExpression(f"operator {type(node.op).__name__} is not allowed")
        elif isinstance(node, ast.Constant):
            if type(node.value) is not int:
                raise UnsafeExpression(f"literal {node.value!r} is not an integer")
        elif not isinstance(node, (ast.operator,)):
            raise UnsafeExpression(f"{type(node).__name__} is not allowed")
    return tree.body


def literals(tree: ast.expr) -> list[int]:
    """The integer literals of a whitelisted expression, in source order."""
    nodes = [n for n in ast.walk(tree) if isinstance(n, ast.Constant)]
    return [n.value for n in sorted(nodes, key=lambda n: n.col_offset)]


def evaluate(tree: ast.expr) -> Fraction:
    """Exact value of a whitelisted expression; raises ZeroDivisionError on x/0."""
    if isinstance(tree, ast.Constant):
        return Fraction(tree.value)
    assert isinstance(tree, ast.BinOp)
    left, right = evaluate(tree.left), evaluate(tree.right)
    if isinstance(tree.op, ast.Div):
        return left / right
    return _BINARY_OPS[type(tree.op)](left, right)


def check_equation(
    expression: str | None, numbers: Sequence[int], target: int, use_all: bool = False
) -> Verdict:
    """Classify one candidate expression (see module docstring for the rules)."""
    if expression is None:
        return "invalid"
    try:
        tree = parse_expression(expression)
    except UnsafeExpression:
        return "invalid"
    used, available = Counter(literals(tree)), Counter(int(n) for n in numbers)
    if used - available or (use_all and used != available):
        return "wrong"
    try:
        value = evaluate(tree)
    except ZeroDivisionError:
        return "wrong"
    return "correct" if value == target else "wrong"


def find_expression(text: str, mode: ExtractionMode, markers: Markers) -> str | None:
    """The candidate equation of a completion: strict span, or last arithmetic run."""
    if mode == "strict":
        return answer_span(text, markers)
    for old, new in _REPLACEMENTS.items():
        text = text.replace(old, new)
    runs = [r for r in _ARITHMETIC_RUN.findall(text) if re.search(r"\d\s*[-+*/]\s*[\d(]", r)]
    return runs[-1] if runs else None


def expression_value(expression: str) -> Fraction | None:
    """Exact value of a safe arithmetic expression; None if unsafe or it divides by zero."""
    try:
        return evaluate(parse_expression(expression))
    except (UnsafeExpression, ZeroDivisionError):
        return None


def countdown_verdicts(
    completions: Sequence[str],
    numbers: Sequence[Sequence[int]],
    target: Sequence[int],
    *,
    markers: Markers,
    mode: ExtractionMode,
    use_all: bool,
) -> list[Verdict]:
    """The verdict on each completion's equation (`check_equation`, module docstring)."""
    check_mode(mode)
    return [
        check_equation(find_expression(text, mode, markers), nums, tgt, use_all)
        for text, nums, tgt in zip(completions, numbers, target, strict=True)
    ]


def countdown_answers(
    completions: list[str],
    *,
    numbers: list[Sequence[int]],
    target: list[int],
    markers: Markers = DEFAULT_MARKERS,
    mode: ExtractionMode = "strict",
    **unused: object,
) -> list[str | None]:
    """The expression each completion proposes (`find_expression`, stripped; None if blank)."""
    check_mode(mode)
    expressions = [find_expression(text, mode, markers) for text in completions]
    return [None if e is None or not e.strip() else e.strip() for e in expressions]


def countdown_vote_key(answer: str) -> str | None:
    """maj@k key: the exact value as `str(Fraction)` ("80", "5/2"); None if it has none.

    "(25 - 5) * 4" and "4 * 20" share the key "80", whichever numbers they use, so a
    vote group may mix verdicts; maj@k scores the group's first sample.
    """
    value = expression_value(answer)
    return None if value is None else str(value)


def countdown_correct(
    completions: list[str],
    *,
    numbers: list[Sequence[int]],
    target: list[int],
    markers: Markers = DEFAULT_MARKERS,
    mode: ExtractionMode = "strict",
    use_all: bool = False,
    **unused: object,
) -> list[bool]:
    """One bool per completion: is its equation correct?"""
    verdicts = countdown_verdicts(
        completions, numbers, target, markers=markers, mode=mode, use_all=use_all
    )
    return [verdict == "correct" for verdict in verdicts]


COUNTDOWN_VERIFIER = Verifier(
    correct=countdown_correct,
    answers=countdown_answers,
    vote_key=countdown_vote_key,
    format_ok=follows_layout,
)


@register_reward("countdown_equation", verifier=COUNTDOWN_VERIFIER)
def countdown_equation(
    completions: list[str],
    *,
    numbers: list[Sequence[int]],
    target: list[int],
    markers: Markers = DEFAULT_MARKERS,
    mode: ExtractionMode = "strict",
    use_all: bool = False,
    correct: float = 1.0,
    wrong: float = 0.0,
    invalid: float = 0.0,
    **unused: object,
) -> list[float]:
    """Score each completion's equation (see module docstring)."""
    scores = {"correct": correct, "wrong": wrong, "invalid": invalid}
    verdicts = countdown_verdicts(
        completions, numbers, target, markers=markers, mode=mode, use_all=use_all
    )
    return [float(scores[verdict]) for verdict in verdicts]
