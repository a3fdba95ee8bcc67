"""Format rewards: is the completion shaped the way the template asked?

Many chat templates (Qwen3, DeepSeek-R1 distills) already open `<think>` in the generation prompt, so the
completion starts inside the reasoning and only contains `</think>`. `think_format` accepts both shapes
unless told otherwise (`rlr rewards check` warns when the template inserts `<think>`).
"""

from __future__ import annotations

import re
from typing import Any

from rlr.rewards.base import Reward
from rlr.rewards.common import column, completion_texts, prompt_text
from rlr.rewards.extract import last_boxed

_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"


class ThinkFormat(Reward):
    """1.0 for exactly one `<think>...</think>` block followed by a non-empty answer, else 0.0.

    `require_open_tag`: None (default) accepts a completion without `<think>` (the prompt opened it) and
    one that opens it; True requires the completion to open it; False requires it not to (prompt opens it).
    A string prompt that ends with `<think>` always means the completion must not open another.

    >>> ThinkFormat()(["<think>2+2=4</think> 4", "</think> 4", "4", "<think>a</think>"])
    [1.0, 1.0, 0.0, 0.0]
    """

    name = "think_format"

    def __init__(self, require_open_tag: bool | None = None) -> None:
        super().__init__()
        self.require_open_tag = require_open_tag

    def __call__(self, completions: list[Any], **kwargs: Any) -> list[float]:
        texts = completion_texts(completions)
        prompts = column(kwargs, "prompts", len(texts), "")
        return [self._score(text, prompt_text(p)) for text, p in zip(texts, prompts, strict=True)]

    def _score(self, text: str, prompt: str) -> float:
        if text.count(_THINK_CLOSE) != 1 or text.count(_THINK_OPEN) > 1:
            return 0.0
        opens = text.lstrip().startswith(_THINK_OPEN)
        if _THINK_OPEN in text and not opens:
            return 0.0
        must_open = False if prompt.rstrip().endswith(_THINK_OPEN) else self.require_open_tag
        if must_open is not None and opens != must_open:
            return 0.0
        return 1.0 if text.partition(_THINK_CLOSE)[2].strip() else 0.0


def _tag_points(text: str) -> float:
    points = 0.0
    close = text.find(_THINK_CLOSE)
    if text.count(_THINK_OPEN) == 1 and text.lstrip().startswith(_THINK_OPEN):
        points += 0.25
    if text.count(_THINK_CLOSE) == 1:
        points += 0.25
    answer_open, answer_close = text.find("<answer>"), text.find("</answer>")
    if text.count("<answer>") == 1 and answer_open > close:
        points += 0.25
    if text.count("</answer>") == 1 and answer_close > answer_open >= 0 and not text[answer_close + 9 :].strip():
        points += 0.25
    return points


def tag_count(completions: list[Any], **kwargs: Any) -> list[float]:
    """Partial credit for the `<think>`/`<answer>` tags: 0.25 per well-placed tag.

    The tags: `<think>` at the start, one `</think>`, one `<answer>` after it, and `</answer>` closing the
    completion (open-r1's `tag_count_reward`, without its newline rules).
    A dense signal that helps a model discover the `<think>/<answer>` format early.

    >>> tag_count(["<think>x</think><answer>1</answer>", "<think>x</think> 1", "1"])
    [1.0, 0.5, 0.0]
    """
    return [_tag_points(text) for text in completion_texts(completions)]


_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


def answer_format(completions: list[Any], **kwargs: Any) -> list[float]:
    """1.0 when the answer part (after `</think>` if present) contains a closed, non-empty `\\boxed{...}`.

    >>> answer_format([r"<think>...</think> \\boxed{3}", "<think>\\boxed{3}</think> 3", r"\\boxed{"])
    [1.0, 0.0, 0.0]
    """
    scores = []
    for text in completion_texts(completions):
        answer_part = text.rpartition(_THINK_CLOSE)[2] if _THINK_CLOSE in text else text
        boxed = last_boxed(answer_part) if _BOXED.search(answer_part) else None
        scores.append(1.0 if boxed else 0.0)
    return scores


def _answer_tag_ok(text: str) -> bool:
    answer_part = text.rpartition(_THINK_CLOSE)[2] if _THINK_CLOSE in text else text
    end = answer_part.rfind("</answer>")
    start = answer_part.rfind("<answer>", 0, end) if end >= 0 else -1
    return start >= 0 and bool(answer_part[start + len("<answer>") : end].strip())


def follows_answer_format(texts: list[str], prompts: list[Any], template_format: str | None) -> list[float]:
    """1.0 where a completion has the shape `template.answer_format` asked for (`rlr evaluate`'s
    `format_compliance`): `boxed` a closed, non-empty `\\boxed{}` in the answer part; `answer_tag` a non-empty
    `<answer>...</answer>` there; `code` a fenced code block; `after_think` and `none` one `<think>...</think>`
    then an answer.

    >>> follows_answer_format([r"\\boxed{3}", "<answer>3</answer>", "<think>x</think> 3"], [""] * 3, "answer_tag")
    [0.0, 1.0, 0.0]
    """
    if template_format == "boxed":
        return answer_format(texts)
    if template_format == "answer_tag":
        return [1.0 if _answer_tag_ok(text) else 0.0 for text in texts]
    if template_format == "code":
        from rlr.rewards.code import extract_code

        return [0.0 if extract_code(text) is None else 1.0 for text in texts]
    return ThinkFormat()(texts, prompts=prompts)
