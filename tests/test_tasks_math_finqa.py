"""Datasets by config: the MATH and FinQA schemas (local fixtures written in them), answer
rules, and the prompt-length filter."""

from __future__ import annotations

import json

import pytest
from config_sections import base_config, section
from test_tasks_prompts import tokenizer  # noqa: F401  (the fixture)

from rlvr_jax.config import ExperimentConfig
from rlvr_jax.markers import DEFAULT_MARKERS
from rlvr_jax.rewards import RewardsConfig, build_rewards, rows_to_fields, score_completions
from rlvr_jax.run_setup import drop_long_prompts
from rlvr_jax.tasks import DataConfig, PromptConfig, load_rows, render_prompt
from rlvr_jax.tasks.answers import extract_answer

MATH_ROWS = [  # MATH-500's schema: problem, solution, answer (and level, subject)
    {
        "problem": "What is $\\frac{2}{4}$ in lowest terms?",
        "solution": "Divide by 2: $\\boxed{\\frac{1}{2}}$.",
        "answer": "\\frac{1}{2}",
        "level": 1,
        "subject": "Prealgebra",
    },
    {  # MATH's original schema has no answer column: the last \boxed{} of the solution
        "problem": "What is $\\sin 45^\\circ$?",
        "solution": "It is $\\boxed{\\frac{\\sqrt{2}}{2}}$.",
        "level": 2,
        "type": "Geometry",
    },
]
FINQA_ROWS = [
    {  # the original release: qa.question / qa.exe_ans
        "pre_text": ["Revenue is reported in millions."],
        "table": [["year", "revenue"], ["2019", "120"], ["2020", "150"]],
        "post_text": ["All figures audited."],
        "qa": {"question": "By how much did revenue grow in 2020?", "exe_ans": 30.0},
    },
    {  # the flattened hub layout: question / answer at the top level, a percentage
        "pre_text": "Margins:",
        "table": [["segment", "margin"], ["a", "10%"]],
        "post_text": "",
        "question": "What is segment a's margin?",
        "answer": "10%",
    },
]


def write_split(directory, split, rows):
    directory.mkdir(exist_ok=True)
    (directory / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_math_fixture_loads_renders_and_scores(tmp_path, tokenizer):  # noqa: F811
    write_split(tmp_path / "math", "test", MATH_ROWS)
    cfg = section(
        DataConfig, "data", name="math", path=str(tmp_path / "math"), split="test", shuffle=False
    )
    rows = load_rows(cfg, "train")
    assert [r["answer"] for r in rows] == ["\\frac{1}{2}", "\\frac{\\sqrt{2}}{2}"]
    assert rows[0]["subject"] == "Prealgebra" and rows[1]["type"] == "Geometry"
    prompt = render_prompt(tokenizer, rows[1], section(PromptConfig, "prompt"), DEFAULT_MARKERS)
    assert "\\sin 45" in prompt
    rewards = build_rewards(
        section(
            RewardsConfig,
            "rewards",
            fns=[{"name": "math_equivalence", "params": {"mode": "lenient"}}],
            correctness="math_equivalence",
        ),
        DEFAULT_MARKERS,
    )
    completions = ["So \\boxed{0.5}", "\\boxed{1/\\sqrt{2}}", "\\boxed{0.7}", "\\boxed{1/2}"]
    out = score_completions(rewards, completions, rows_to_fields(rows + rows))
    assert out.correct.tolist() == [True, True, False, False]


def test_finqa_fixture_renders_the_table_and_scores(tmp_path, tokenizer):  # noqa: F811
    write_split(tmp_path / "finqa", "train", FINQA_ROWS)
    cfg = section(DataConfig, "data", name="finqa", path=str(tmp_path / "finqa"), shuffle=False)
    rows = load_rows(cfg, "train")
    assert [r["answer"] for r in rows] == ["30", "10"]
    question = rows[0]["question"]
    assert question.index("Revenue is reported") < question.index("| year | revenue |")
    assert "| 2020 | 150 |" in question and question.endswith(
        "Question: By how much did revenue grow in 2020?"
    )
    prompt = render_prompt(tokenizer, rows[0], section(PromptConfig, "prompt"), DEFAULT_MARKERS)
    assert "| 2019 | 120 |" in prompt
    rewards = build_rewards(section(RewardsConfig, "rewards"), DEFAULT_MARKERS)  # answer_match
    out = score_completions(rewards, ["It grew by 30.", "About 10"], rows_to_fields(rows))
    assert out.correct.tolist() == [True, True]


@pytest.mark.parametrize(
    "rule,regex,value,expected",
    [
        ("auto", "", "steps\n#### 1,080", "1080"),
        ("after_hashes", "", "no hashes here", None),
        ("last_boxed", "", "a \\boxed{3} then \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("regex", r"answer is (\S+)", "the answer is 12 and the answer is 7.", "7"),  # normalized
        ("regex", r"answer is (\d+)", "the answer is 12, no: the answer is 7", "7"),
        ("column", "", "  Paris,\n France ", "Paris, France"),
    ],
)
def test_answer_rules(rule, regex, value, expected):
    assert extract_answer(value, rule, regex) == expected


def test_answer_rule_errors_name_the_key():
    with pytest.raises(ValueError, match="data.answer_rule"):
        section(DataConfig, "data", answer_rule="first_number")
    with pytest.raises(ValueError, match="data.answer_regex: needs exactly one group"):
        section(DataConfig, "data", answer_rule="regex", answer_regex=r"(\d+) (\d+)")
    with pytest.raises(ValueError, match="data.answer_regex: .* does not compile"):
        section(DataConfig, "data", answer_rule="regex", answer_regex="(")


def test_jsonl_with_an_answer_rule(tmp_path):
    write_split(tmp_path / "qa", "train", [{"q": "Capital?", "a": "The answer is Paris."}])
    cfg = section(
        DataConfig,
        "data",
        name="jsonl",
        path=str(tmp_path / "qa"),
        question_field="q",
        answer_field="a",
        answer_rule="regex",
        answer_regex=r"answer is (\w+)",
    )
    assert load_rows(cfg, "train")[0]["answer"] == "Paris"


def test_long_prompts_are_dropped(tokenizer):  # noqa: F811
    config = base_config()
    config.data.max_prompt_tokens = 30  # the template alone is ~20 of the fixture tokenizer
    exp = ExperimentConfig.from_config_dict(config)
    rows = ({"question": "short one", "answer": "1"}, {"question": "w " * 40, "answer": "2"})
    fits = dict(tokenizer=tokenizer, task=exp.tasks[0], markers=DEFAULT_MARKERS, examples=())
    assert drop_long_prompts(rows, "train", **fits) == rows[:1]
    config.data.max_prompt_tokens = 1
    with pytest.raises(ValueError, match="data.max_prompt_tokens=1: every train prompt"):
        drop_long_prompts(
            rows, "train", **{**fits, "task": ExperimentConfig.from_config_dict(config).tasks[0]}
        )
