"""Prompt templates through a real chat template, on a tokenizer built locally."""

import pytest
from config_sections import section
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from rlvr_jax.config_builder import ConfigError
from rlvr_jax.markers import DEFAULT_MARKERS, THINK_MARKERS, Markers, markers_for
from rlvr_jax.tasks import PromptConfig, build_messages, render_prompt, resolve_markers
from rlvr_jax.tasks.prompts import (
    ANSWER_ONLY_SYSTEM_PROMPT,
    few_shot_examples,
    render_prompts,
)

# ChatML, with a default system prompt when the messages bring none (as SmolLM2 and Qwen do).
CHAT_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nDEFAULT SYSTEM<|im_end|>\\n' }}"
    "{% endif %}"
    "{% for m in messages %}"
    "{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
ROW = {
    "question": "What is 2 + 3?",
    "answer": "5",
    "demo_reasoning": "2 + 3 = 5",
    "demo_answer": "5",
}


def _prompt(**overrides) -> PromptConfig:
    """configs/arithmetic.py's `prompt` group (style 'no_system') with overrides."""
    return section(PromptConfig, "prompt", **overrides)


@pytest.fixture(scope="module")
def tokenizer():
    backend = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, chat_template=CHAT_TEMPLATE, unk_token="[UNK]"
    )


def test_reasoning_style_asks_for_the_markers(tokenizer):
    prompt = render_prompt(tokenizer, ROW, _prompt(style="reasoning"), DEFAULT_MARKERS)
    assert prompt.startswith("<|im_start|>system\nYou are given a problem.")
    for marker in DEFAULT_MARKERS.as_tuple():
        assert marker in prompt
    assert prompt.endswith("<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n")
    assert "DEFAULT SYSTEM" not in prompt


def test_model_specific_markers_reach_the_prompt(tokenizer):
    prompt = render_prompt(tokenizer, ROW, _prompt(style="reasoning"), THINK_MARKERS)
    assert "<think>" in prompt and "<reasoning>" not in prompt


def test_answer_only_style(tokenizer):
    prompt = render_prompt(tokenizer, ROW, _prompt(style="answer_only"), DEFAULT_MARKERS)
    assert ANSWER_ONLY_SYSTEM_PROMPT in prompt and "<answer>" not in prompt


def test_no_system_style_uses_the_templates_default(tokenizer):
    config = _prompt(style="no_system", user_template="{question}\nEnd with #### N.")
    messages = build_messages(ROW, config, DEFAULT_MARKERS)
    assert [m["role"] for m in messages] == ["user"]
    prompt = render_prompt(tokenizer, ROW, config, DEFAULT_MARKERS)
    assert prompt == (
        "<|im_start|>system\nDEFAULT SYSTEM<|im_end|>\n"
        "<|im_start|>user\nWhat is 2 + 3?\nEnd with #### N.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_custom_system_prompt_and_user_template_with_row_fields():
    config = _prompt(
        style="reasoning",
        system_prompt="Answer inside {answer_start}{answer_end}.",
        user_template="Numbers: {numbers}. {question}",
    )
    row = {"question": "Reach 10.", "answer": "10", "numbers": [6, 4]}
    messages = build_messages(row, config, DEFAULT_MARKERS)
    assert messages[0]["content"] == "Answer inside <answer></answer>."
    assert messages[1]["content"] == "Numbers: [6, 4]. Reach 10."


def test_few_shot_demonstrations_come_before_the_question():
    config = _prompt(style="reasoning", few_shot=2)
    examples = few_shot_examples(
        [dict(ROW, question="What is 1 + 1?", demo_reasoning="1 + 1 = 2", demo_answer="2"), ROW],
        config,
    )
    messages = build_messages(ROW, config, DEFAULT_MARKERS, examples)
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert messages[2]["content"] == (
        "<reasoning>\n1 + 1 = 2\n</reasoning>\n<answer>\n2\n</answer>"
    )
    answer_only = build_messages(ROW, _prompt(style="answer_only"), DEFAULT_MARKERS, examples)
    assert answer_only[2]["content"] == "2"


def test_few_shot_needs_demo_fields():
    with pytest.raises(ValueError, match="demo_reasoning"):
        build_messages(ROW, _prompt(), DEFAULT_MARKERS, [{"question": "q", "answer": "1"}])


def test_render_prompts_and_missing_chat_template(tokenizer):
    assert len(render_prompts(tokenizer, [ROW, ROW], _prompt(), DEFAULT_MARKERS)) == 2

    class NoTemplate:
        chat_template = None

    with pytest.raises(ValueError, match="no chat template"):
        render_prompt(NoTemplate(), ROW, _prompt(), DEFAULT_MARKERS)


@pytest.mark.parametrize(
    "model, markers",
    [
        ("HuggingFaceTB/SmolLM2-135M-Instruct", DEFAULT_MARKERS),
        ("smollm2-135m-instruct", DEFAULT_MARKERS),
        ("Qwen/Qwen2.5-1.5B-Instruct", DEFAULT_MARKERS),
        ("Qwen/Qwen3-0.6B", THINK_MARKERS),
        ("qwen3", THINK_MARKERS),
        ("gemma3_text", DEFAULT_MARKERS),
    ],
)
def test_markers_for(model, markers):
    assert markers_for(model) == markers


def test_resolve_markers_fills_only_the_empty_fields():
    config = _prompt(answer_start="<SOLUTION>", answer_end="</SOLUTION>")
    assert resolve_markers(config, "Qwen/Qwen3-0.6B") == Markers(
        "<think>", "</think>", "<SOLUTION>", "</SOLUTION>"
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"style": "chatty"}, r"prompt.style: unknown style 'chatty'; choose one of \['reasoning'"),
        ({"style": "no_system", "system_prompt": "Be brief."}, r"prompt.system_prompt: style"),
        ({"user_template": "Solve it."}, r"prompt.user_template: must contain"),
        (
            {"style": "reasoning", "system_prompt": "Use {answer_star}."},
            r"prompt.system_prompt: unknown fields",
        ),
        ({"user_template": "{question"}, r"prompt.user_template: not a valid"),
        ({"few_shot": -1}, r"prompt.few_shot"),
        ({"stlye": "reasoning"}, r"^prompt\.stlye: unknown key"),
    ],
)
def test_config_errors_name_the_key(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        _prompt(**kwargs)


def test_markers_must_be_distinct_and_non_empty():
    with pytest.raises(ValueError, match="distinct"):
        Markers(answer_start="<reasoning>")
    with pytest.raises(ValueError, match="prompt.answer_end"):
        Markers(answer_end=" ")
