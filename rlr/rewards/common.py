"""Helpers every reward needs: the text of a completion in either TRL format, and its length."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def completion_text(completion: Any) -> str:
    """Plain text of a completion: a string, or TRL's conversational `[{"role": "assistant", "content": ...}]`."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content") or "")
    if isinstance(completion, Sequence):
        return "".join(completion_text(message) for message in completion if _is_assistant(message))
    return str(completion)


def _is_assistant(message: Any) -> bool:
    return not isinstance(message, dict) or message.get("role", "assistant") == "assistant"


def completion_texts(completions: Sequence[Any]) -> list[str]:
    return [completion_text(c) for c in completions]


def prompt_text(prompt: Any) -> str:
    """Text of a prompt (string, or the last message's content for a conversation)."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Sequence) and prompt and isinstance(prompt[-1], dict):
        return str(prompt[-1].get("content") or "")
    return ""


def completion_lengths(texts: Sequence[str], completion_ids: Sequence[Sequence[int]] | None) -> list[int]:
    """Length in tokens when TRL passed `completion_ids` (it always does in training), else whitespace tokens.

    Whitespace tokens undercount real tokens (~1.3 tokens per English word, more for math), so limits set for
    training apply a little later in `rlr rewards check`, which has no token ids.
    """
    if completion_ids is not None and len(completion_ids) == len(texts):
        return [len(ids) for ids in completion_ids]
    return [len(text.split()) for text in texts]


def column(kwargs: dict[str, Any], name: str, n: int, default: Any = None) -> list[Any]:
    """A dataset column from TRL's kwargs, or `default` repeated when the dataset has no such column."""
    values = kwargs.get(name)
    if values is None:
        return [default] * n
    return list(values)
