"""Partial credit for integer answers: a denser learning signal than exact match when a policy starts weak.

Why: with an all-or-nothing reward, a group whose samples are all wrong teaches GRPO nothing, however close they
came. Crediting each right digit separates "one column wrong" from "nothing right", so a weak start still has
advantages to learn from (issue 13 measured the quickstart with and without it; see presets/quickstart.yaml).
It is a shaping reward, not a verifier: it does not `measure_correctness`, and evaluate never counts it.
"""

from __future__ import annotations

import re
from typing import Any

from rlr.rewards.base import Reward
from rlr.rewards.common import column, completion_texts
from rlr.tasks.base import answer_tag, last_boxed, last_number, text_after_think

_INTEGER = re.compile(r"-?\d+")


def final_integer(completion: str) -> str | None:
    """The answer as the arithmetic verifier reads it: after `</think>` (an `<answer>` tag or `\\boxed{}` first),
    else the completion's last number; None unless it is an integer."""
    after = text_after_think(completion)
    text = completion if after is None else (answer_tag(after) or last_boxed(after) or after)
    found = last_number(text)
    return found if found is not None and _INTEGER.fullmatch(found) else None


def digit_credit(predicted: str | None, gold: str) -> float:
    """Right digits / the longer length, compared from the ones digit; 0.0 for a missing answer or another sign.

    >>> [digit_credit(p, "1104") for p in ("1104", "1194", "104", None)]
    [1.0, 0.75, 0.75, 0.0]
    """
    if predicted is None or predicted.startswith("-") != gold.startswith("-"):
        return 0.0
    p, g = predicted.lstrip("-"), gold.lstrip("-")
    right = sum(a == b for a, b in zip(reversed(p), reversed(g), strict=False))  # lengths may differ
    return right / max(len(p), len(g))


class DigitCredit(Reward):
    """The fraction of the gold integer's digits the final answer gets right (ones digit first); exact = 1.0.

    A row whose gold answer is not an integer scores None (TRL leaves it out of the mean).

    >>> DigitCredit()(["<think>...</think> 85", "<think>...</think> 95", "no answer"], answer=["85", "85", "85"])
    [1.0, 0.5, 0.0]
    """

    name = "digit_credit"

    def __call__(self, completions: list[Any], **kwargs: Any) -> list[float | None]:
        texts = completion_texts(completions)
        answers = column(kwargs, "answer", len(texts))
        out: list[float | None] = []
        for text, answer in zip(texts, answers, strict=True):
            gold = str(answer).strip().replace(",", "") if answer is not None else ""
            out.append(digit_credit(final_integer(text), gold) if _INTEGER.fullmatch(gold) else None)
        return out
