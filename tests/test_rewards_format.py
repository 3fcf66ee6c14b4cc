"""`format_exact` and `format_approx` case by case."""

import pytest

from rlvr_jax.markers import DEFAULT_MARKERS, THINK_MARKERS
from rlvr_jax.rewards.format import format_approx, format_exact

GOOD = "<reasoning>9 * 2 = 18</reasoning><answer>18</answer>"

EXACT_CASES = [
    (GOOD, 1.0),
    ("  <reasoning>\n9 * 2 = 18\n</reasoning>\n<answer>\n18\n</answer>\n", 1.0),
    ("<reasoning>r</reasoning>", 0.0),  # no answer block
    ("<answer>18</answer>", 0.0),  # no reasoning block
    ("<answer>18</answer><reasoning>r</reasoning>", 0.0),  # wrong order
    ("Sure! " + GOOD, 0.0),  # text before
    (GOOD + " Hope this helps.", 0.0),  # text after
    ("<reasoning>r</reasoning> so <answer>18</answer>", 0.0),  # text between
    ("<reasoning> </reasoning><answer>18</answer>", 0.0),  # blank reasoning
    ("<reasoning>r</reasoning><answer>\n</answer>", 0.0),  # blank answer
    ("<reasoning>r</reasoning><answer>17</answer><answer>18</answer>", 0.0),  # two answers
    ("<reasoning>a<reasoning>b</reasoning><answer>18</answer>", 0.0),  # repeated marker
    ("", 0.0),
    ("<think>r</think><answer>18</answer>", 0.0),  # other markers
]


@pytest.mark.parametrize("completion, score", EXACT_CASES)
def test_format_exact(completion, score):
    assert format_exact([completion]) == [score]


def test_format_exact_scores_and_markers_are_params():
    think = "<think>r</think><answer>18</answer>"
    assert format_exact([think], markers=THINK_MARKERS, matched=3.0) == [3.0]
    assert format_exact([GOOD], markers=THINK_MARKERS, unmatched=-1.0) == [-1.0]


APPROX_CASES = [
    (GOOD, 2.0),
    ("", -2.0),
    ("<answer>18</answer>", 0.0),  # two markers once, two absent
    ("<reasoning>r</reasoning><answer>1</answer><answer>2</answer>", 0.0),  # repeats count -0.5
    ("<reasoning>r</reasoning>", 0.0),
    ("<reasoning><reasoning></reasoning></reasoning><answer></answer>", 0.0),
    ("text <answer>18</answer> <reasoning>r</reasoning> text", 2.0),  # order is not checked
]


@pytest.mark.parametrize("completion, score", APPROX_CASES)
def test_format_approx(completion, score):
    assert format_approx([completion], markers=DEFAULT_MARKERS) == [score]


def test_format_approx_amounts_are_params():
    assert format_approx(["<answer>18</answer>"], once=1.0, otherwise=0.0) == [2.0]
    assert format_approx([""], once=0.5, otherwise=-1.0) == [-4.0]
