"""Reasoning and answer markers, chosen per model.

A completion in the reasoning format looks like

    <reasoning> ... </reasoning><answer> 42 </answer>

The prompt asks for this layout, the format rewards check it, and strict answer
extraction reads the last answer block. All three take their markers from one
`Markers` value, so a model with native thinking tags (Qwen3's `<think>`) is
prompted and scored with the same strings.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Markers:
    """The four strings that delimit the reasoning block and the answer block."""

    reasoning_start: str = "<reasoning>"
    reasoning_end: str = "</reasoning>"
    answer_start: str = "<answer>"
    answer_end: str = "</answer>"

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"prompt.{field.name}: a marker must be a non-empty string")
        values = self.as_tuple()
        if len(set(values)) != len(values):
            raise ValueError(f"prompt markers must be distinct, got {values}")

    def as_tuple(self) -> tuple[str, str, str, str]:
        return (self.reasoning_start, self.reasoning_end, self.answer_start, self.answer_end)


DEFAULT_MARKERS = Markers()
THINK_MARKERS = Markers(reasoning_start="<think>", reasoning_end="</think>")

# Substrings of a model name or `model_type` (lower case) whose models emit native
# thinking tags; the first match wins.
_NATIVE_THINKING = ("qwen3", "deepseek-r1", "deepseek_r1", "qwq")


def markers_for(model_name_or_type: str) -> Markers:
    """Markers for a model, from its checkpoint name, hub id or HF `model_type`.

    Models trained with native thinking tags (Qwen3, DeepSeek-R1 distills, QwQ)
    reason inside `<think>...</think>`; every other model gets the default
    `<reasoning>...</reasoning>`. The answer block is `<answer>...</answer>` for all.
    """
    name = model_name_or_type.lower()
    if any(key in name for key in _NATIVE_THINKING):
        return THINK_MARKERS
    return DEFAULT_MARKERS
