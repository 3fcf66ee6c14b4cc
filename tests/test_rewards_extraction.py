"""Numeric normalization and answer extraction, case by case."""

import pytest

from rlvr_jax.markers import DEFAULT_MARKERS, THINK_MARKERS
from rlvr_jax.rewards.extraction import answer_span, check_mode, extract_answer
from rlvr_jax.rewards.numbers import canonical, find_numbers, normalize_number, to_fraction

NORMALIZE_CASES = [
    # (text, canonical or None)
    ("18", "18"),
    ("18.00", "18"),
    ("18.", "18"),
    ("$18.00", "18"),
    ("$1,234.50", "1234.5"),
    ("1,234,567", "1234567"),
    ("-5", "-5"),
    ("\u22125", "-5"),  # unicode minus sign
    ("-$5", "-5"),
    ("$-5", "-5"),
    ("(-5)", "-5"),
    ("+7", "7"),
    ("3/4", "0.75"),
    ("\\frac{3}{4}", "0.75"),
    ("\\dfrac{1}{3}", "1/3"),
    ("1 1/2", "1.5"),
    (".5", "0.5"),
    ("0.50", "0.5"),
    ("0018", "18"),
    ("-0", "0"),
    ("50%", "50"),
    ("18 eggs", "18"),
    ("18 eggs.", "18"),
    ("\u20ac18", "18"),
    ("1{,}234", "1234"),  # LaTeX thousands separator
    ("\\$18", "18"),
    ("  42\n", "42"),
    # Not one number:
    ("x = 1", None),
    ("3 apples and 4 pears", None),
    ("1/0", None),
    ("", None),
    ("eighteen", None),
    ("1e3", None),
    ("1,23", None),  # not a thousands grouping
]


@pytest.mark.parametrize("text, expected", NORMALIZE_CASES)
def test_normalize_number(text, expected):
    assert normalize_number(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("It costs $1,234.50, not -3/4.", ["1234.5", "-0.75"]),
        ("3-5", ["3", "5"]),  # a '-' after a digit is not a sign
        ("1,23", ["1", "23"]),
        ("1,2345", ["1", "2345"]),
        ("v1.2.3", []),
        ("divide by 1/0 then 7", ["7"]),
        ("no digits here", []),
    ],
)
def test_find_numbers(text, expected):
    assert find_numbers(text) == expected


def test_canonical_forms():
    assert canonical(to_fraction("2/8")) == "0.25"
    assert canonical(to_fraction("-7/2")) == "-3.5"
    assert canonical(to_fraction("2/3")) == "2/3"
    assert to_fraction("9" * 500) is None  # absurdly long digit strings are not answers


EXTRACT_CASES = [
    # (completion, strict, lenient)
    ("<answer>18</answer>", "18", "18"),
    ("<answer>$18.00</answer>", "18", "18"),
    ("<answer>18 eggs</answer>", "18", "18"),
    ("<answer>The answer is 1,234.</answer>", "1234", "1234"),
    ("The answer is 1,234.", None, "1234"),  # no marker: strict finds nothing
    ("<reasoning>2 + 16 = 18</reasoning><answer>I am not sure</answer>", "I am not sure", "18"),
    ("<answer>17</answer> then <answer>18</answer>", "18", "18"),  # the last block wins
    ("", None, None),
    ("<answer>\u22125</answer>", "-5", "-5"),
    ("<answer>5 + 13 = 18</answer>", "18", "18"),
    ("<answer>18</answer> Let me check: 9 * 2 = 18, and 3 more.", "18", "3"),
    ("<answer>18", None, "18"),  # an unclosed block is not an answer block
    ("<answer>   </answer>", None, None),
    ("She makes $18.\n#### 18", "18", "18"),
    ("Total 1,080 items\n#### 1,080\n", "1080", "1080"),
    ("so \\boxed{\\frac{3}{4}} it is", "0.75", "0.75"),
    ("<answer>B</answer>", "B", None),
    ("<answer>x = -2.50</answer>", "-2.5", "-2.5"),
    ("<answer>(-5)</answer>", "-5", "-5"),
    ("<answer>1/2 cup</answer>", "0.5", "0.5"),
]


@pytest.mark.parametrize("completion, strict, lenient", EXTRACT_CASES)
def test_extract_answer(completion, strict, lenient):
    assert extract_answer(completion, "strict") == strict
    assert extract_answer(completion, "lenient") == lenient


def test_answer_span_precedence():
    text = "#### 3\n\\boxed{4} <answer>5</answer>"
    assert answer_span(text) == "5"  # answer block first
    assert answer_span("\\boxed{4} #### 3") == "3"  # then ####
    assert answer_span("\\boxed{\\frac{1}{2}} and \\boxed{x^{2}}") == "x^{2}"  # last, balanced
    assert answer_span("no answer") is None


def test_extraction_uses_the_given_markers():
    text = "<think>so 7</think><answer>8</answer>"
    assert extract_answer(text, "strict", THINK_MARKERS) == "8"
    custom = DEFAULT_MARKERS.__class__(answer_start="<SOLUTION>", answer_end="</SOLUTION>")
    assert extract_answer("<SOLUTION>9</SOLUTION>", "strict", custom) == "9"
    assert extract_answer("<SOLUTION>9</SOLUTION>", "strict", DEFAULT_MARKERS) is None


def test_unknown_mode_fails():
    with pytest.raises(ValueError, match="strict"):
        extract_answer("1", "loose")


def test_check_mode_names_the_mode_param():
    check_mode("strict")
    check_mode("lenient")
    message = r"^mode: must be one of \['strict', 'lenient'\], got 'loose'"
    with pytest.raises(ValueError, match=message):
        check_mode("loose")
