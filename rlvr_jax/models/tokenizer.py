"""Chat rendering: messages -> prompt token ids through the tokenizer's chat template."""

from __future__ import annotations

from typing import Any


def render_chat(
    tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool = True
) -> list[int]:
    """Token ids of `messages` rendered by the chat template.

    The template already writes any BOS token, so the tokenizer adds no special tokens.
    With `add_generation_prompt` the ids end with the assistant turn header.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("tokenizer has no chat_template; use a plain prompt template instead")
    text = tokenizer.apply_chat_template(
        messages, add_generation_prompt=add_generation_prompt, tokenize=False
    )
    return tokenizer(text, add_special_tokens=False)["input_ids"]
