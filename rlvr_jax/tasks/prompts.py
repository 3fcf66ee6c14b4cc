"""Prompt templates: rows to chat messages to prompt strings, through the chat template.

Styles (`prompt.style`):
* "reasoning": a system prompt asks for reasoning between the reasoning markers, then
  the final answer between the answer markers (the layout the format rewards check).
* "answer_only": a system prompt asks for the final answer alone, with no markers;
  score it with `mode='lenient'` extraction. Meant for small models.
* "no_system": no system message at all, so the model's chat template applies its own
  default; instructions, if any, go in `prompt.user_template`. Small models often do
  better this way.

`prompt.system_prompt` and `prompt.user_template` are `str.format` templates. Both may
use the markers ({reasoning_start}, {reasoning_end}, {answer_start}, {answer_end});
the user template also gets every row field ({question}, {numbers}, ...).
Few-shot demonstrations are user/assistant turns before the question, built from the
rows' `demo_reasoning` / `demo_answer` fields.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Sequence
from typing import Any

from rlvr_jax.markers import Markers, markers_for
from rlvr_jax.tasks.base import Row

PROMPT_STYLES = ("reasoning", "answer_only", "no_system")

REASONING_SYSTEM_PROMPT = (
    "You are given a problem. Think about it step by step and write your reasoning "
    "between {reasoning_start} and {reasoning_end}. Then give only the final answer "
    "between {answer_start} and {answer_end}."
)
ANSWER_ONLY_SYSTEM_PROMPT = "Reply with only the final answer, with no explanation."
BUILTIN_SYSTEM_PROMPTS = {
    "reasoning": REASONING_SYSTEM_PROMPT,
    "answer_only": ANSWER_ONLY_SYSTEM_PROMPT,
}
_MARKER_FIELDS = ("reasoning_start", "reasoning_end", "answer_start", "answer_end")


@dataclasses.dataclass(frozen=True)
class PromptConfig:
    """How rows become prompts (`config.prompt`).

    No defaults: configs/arithmetic.py declares every key; `config_builder.build` converts.
    """

    style: str  # one of PROMPT_STYLES
    # System prompt template; "" means the style's built-in one (BUILTIN_SYSTEM_PROMPTS).
    system_prompt: str
    user_template: str  # the user turn; may use row fields and markers
    # Markers; "" means the model's own (`markers_for(model.checkpoint)`).
    reasoning_start: str
    reasoning_end: str
    answer_start: str
    answer_end: str
    few_shot: int  # number of worked examples shown before the question

    def __post_init__(self) -> None:
        if self.style not in PROMPT_STYLES:
            raise ValueError(
                f"prompt.style: unknown style {self.style!r}; choose one of {list(PROMPT_STYLES)}"
            )
        if self.style == "no_system" and self.system_prompt:
            raise ValueError(
                "prompt.system_prompt: style 'no_system' sends no system prompt; leave it "
                "empty and put instructions in prompt.user_template"
            )
        if self.few_shot < 0:
            raise ValueError(f"prompt.few_shot: must be >= 0, got {self.few_shot}")
        unknown = set(_template_fields("system_prompt", self.system_prompt)) - set(_MARKER_FIELDS)
        if unknown:
            raise ValueError(
                f"prompt.system_prompt: unknown fields {sorted(unknown)}; it may use "
                f"{list(_MARKER_FIELDS)} (write literal braces as {{{{ }}}})"
            )
        if "question" not in _template_fields("user_template", self.user_template):
            raise ValueError("prompt.user_template: must contain '{question}'")


def _template_fields(key: str, template: str) -> list[str]:
    """The field names of a str.format template; errors name the config key."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as e:
        raise ValueError(f"prompt.{key}: not a valid str.format template: {e}") from e
    if any(not name.isidentifier() for name in names):
        raise ValueError(f"prompt.{key}: fields must be plain names, got {names}")
    return names


def resolve_markers(config: PromptConfig, model_name_or_type: str) -> Markers:
    """The run's markers: those set in `config`, the model's own for those left empty."""
    model_markers = markers_for(model_name_or_type)
    return Markers(
        **{
            field: getattr(config, field) or getattr(model_markers, field)
            for field in _MARKER_FIELDS
        }
    )


def _marker_values(markers: Markers) -> dict[str, str]:
    return dict(zip(_MARKER_FIELDS, markers.as_tuple(), strict=True))


def system_text(config: PromptConfig, markers: Markers) -> str | None:
    """The rendered system prompt, or None for the "no_system" style."""
    if config.style == "no_system":
        return None
    template = config.system_prompt or BUILTIN_SYSTEM_PROMPTS[config.style]
    return template.format(**_marker_values(markers))


def user_text(row: Row, config: PromptConfig, markers: Markers) -> str:
    return config.user_template.format(**{**_marker_values(markers), **row})


def demo_completion(row: Row, config: PromptConfig, markers: Markers) -> str:
    """The assistant turn of a few-shot demonstration, in the layout the style asks for."""
    if "demo_reasoning" not in row or "demo_answer" not in row:
        raise ValueError(
            "prompt.few_shot: the dataset rows have no demo_reasoning / demo_answer fields"
        )
    if config.style == "answer_only":
        return row["demo_answer"]
    return (
        f"{markers.reasoning_start}\n{row['demo_reasoning']}\n{markers.reasoning_end}\n"
        f"{markers.answer_start}\n{row['demo_answer']}\n{markers.answer_end}"
    )


def few_shot_examples(rows: Sequence[Row], config: PromptConfig) -> list[Row]:
    """The first `prompt.few_shot` rows (pass rows the model is not evaluated on)."""
    if len(rows) < config.few_shot:
        raise ValueError(f"prompt.few_shot: {config.few_shot} examples, only {len(rows)} rows")
    return list(rows[: config.few_shot])


def build_messages(
    row: Row, config: PromptConfig, markers: Markers, examples: Sequence[Row] = ()
) -> list[dict[str, str]]:
    """Chat messages for one row: [system], then demonstrations, then the question."""
    messages = []
    system = system_text(config, markers)
    if system is not None:
        messages.append({"role": "system", "content": system})
    for example in examples:
        messages.append({"role": "user", "content": user_text(example, config, markers)})
        messages.append({"role": "assistant", "content": demo_completion(example, config, markers)})
    messages.append({"role": "user", "content": user_text(row, config, markers)})
    return messages


def render_prompt(
    tokenizer: Any,
    row: Row,
    config: PromptConfig,
    markers: Markers,
    examples: Sequence[Row] = (),
) -> str:
    """The prompt string for one row, through the tokenizer's chat template."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            "prompt.style: the tokenizer has no chat template; use an instruct/chat checkpoint"
        )
    messages = build_messages(row, config, markers, examples)
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def render_prompts(
    tokenizer: Any,
    rows: Sequence[Row],
    config: PromptConfig,
    markers: Markers,
    examples: Sequence[Row] = (),
) -> list[str]:
    """`render_prompt` for each row."""
    return [render_prompt(tokenizer, row, config, markers, examples) for row in rows]
