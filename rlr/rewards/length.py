"""Length shaping rewards. Lengths are in tokens when TRL passes `completion_ids` (always, in training),
else whitespace-separated words (`rlr rewards check`); see `rlr.rewards.common.completion_lengths`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rlr.rewards.accuracy import correctness_results
from rlr.rewards.base import Reward
from rlr.rewards.common import column, completion_lengths, completion_texts
from rlr.rewards.math_extract import MathSettings

_MAX_MEAN_WORD_CHARS = 10  # English averages ~5 characters a word; more means the text is not spaced into words
_MIN_CHARS_FOR_CHAR_NGRAMS = 60


def _correctness(texts: list[str], kwargs: dict[str, Any], settings: MathSettings | None = None) -> list[float | None]:
    """Correctness per completion as the correctness rewards see it: None without a readable ground truth."""
    tasks = [t or "math" for t in column(kwargs, "task", len(texts), "math")]
    results = correctness_results(texts, kwargs, tasks, settings=settings)
    return [None if r is None or r[1] == "gold_unparseable" else r[0] for r in results]


class Overlong(Reward):
    """DAPO's soft overlong punishment: 0 for short completions, down to -1 near `max_completion_len`.

    Yu et al. 2025, eq. 13: 0 up to `max_completion_len - soft_punish_cache` tokens, then linearly down to
    -1 at `max_completion_len`, and -1 beyond.

    >>> Overlong(max_completion_len=10, soft_punish_cache=4)(["a"] * 3, completion_ids=[[0] * 5, [0] * 8, [0] * 12])
    [0.0, -0.5, -1.0]
    """

    name = "overlong"
    # its mean rises as completions come to fit the budget, which is what it asks for, not a hack
    watched_for_hacking = False

    @classmethod
    def length_budget_defaults(cls, args, max_completion_length):
        # DAPO punishes the last 20% of the budget (4096 of 20480)
        budget = args.get("max_completion_len", max_completion_length)
        return {"max_completion_len": budget, "soft_punish_cache": max(1, round(0.2 * budget))}

    def __init__(self, max_completion_len: int = 1024, soft_punish_cache: int = 256) -> None:
        super().__init__()
        if not 0 < soft_punish_cache <= max_completion_len:
            raise ValueError("soft_punish_cache must be in (0, max_completion_len]")
        self.max_completion_len = max_completion_len
        self.soft_punish_cache = soft_punish_cache

    def __call__(self, completions: list[Any], completion_ids: list[list[int]] | None = None, **kwargs: Any):
        lengths = completion_lengths(completion_texts(completions), completion_ids)
        start = self.max_completion_len - self.soft_punish_cache
        return [0.0 if n <= start else max(-1.0, (start - n) / self.soft_punish_cache) for n in lengths]


class Cosine(Reward):
    """Correctness scaled by length on a cosine schedule: short correct answers earn the most.

    Yeo et al. 2025, "Demystifying Long CoT", as in open-r1: correct answers earn `max_value_correct` when
    short, down to `min_value_correct` at `max_len`; wrong answers are punished most when short
    (`min_value_wrong`) and least at `max_len` (`max_value_wrong`), which keeps the model exploring.

    >>> Cosine(max_len=10)([r"\\boxed{1}", r"\\boxed{2}"], answer=["1", "1"], completion_ids=[[0] * 5, [0] * 5])
    [0.75, -0.75]
    """

    name = "cosine"
    # not `measures_correctness`: its mean mixes correctness with length and is no accuracy

    @classmethod
    def length_budget_defaults(cls, args, max_completion_length):
        return {"max_len": max_completion_length}  # the schedule spans the whole budget

    def __init__(
        self,
        max_len: int = 1024,
        min_value_wrong: float = -1.0,
        max_value_wrong: float = -0.5,
        min_value_correct: float = 0.5,
        max_value_correct: float = 1.0,
        precision: int = 6,
        strict: bool = True,
        allow_set_relation_comp: bool = False,
    ) -> None:
        super().__init__()
        self.max_len = max_len
        MathSettings(precision, strict, allow_set_relation_comp)  # checked now: a bad one is a bad arg
        self.precision, self.strict, self.allow_set_relation_comp = precision, strict, allow_set_relation_comp
        self.min_value_wrong, self.max_value_wrong = min_value_wrong, max_value_wrong
        self.min_value_correct, self.max_value_correct = min_value_correct, max_value_correct

    def __call__(self, completions: list[Any], completion_ids: list[list[int]] | None = None, **kwargs: Any):
        texts = completion_texts(completions)
        settings = MathSettings(self.precision, self.strict, self.allow_set_relation_comp)
        correct = _correctness(texts, kwargs, settings)
        rewards: list[float | None] = []
        for length, score in zip(completion_lengths(texts, completion_ids), correct, strict=True):
            if score is None:  # no ground truth, or one math-verify cannot read: TRL skips the row
                rewards.append(None)
                continue
            # Clamped: cos is periodic, past max_len it would climb back and reward rambling.
            cosine = math.cos(min(length / self.max_len, 1.0) * math.pi)
            if score >= 1.0:
                lo, hi = self.min_value_correct, self.max_value_correct
            else:
                lo, hi = self.max_value_wrong, self.min_value_wrong
            rewards.append(lo + 0.5 * (hi - lo) * (1.0 + cosine))
        return rewards


class LengthPenalty(Reward):
    """Kimi k1.5's length reward within each prompt's group: shorter correct answers earn more.

    Kimi Team 2025, sec. 2.3.3, over the completions of the same prompt:
    lambda = 0.5 - (len - min_len) / (max_len - min_len); correct answers get lambda, wrong ones min(0, lambda).
    So the shortest correct answer earns +0.5 and long wrong answers are pushed down.
    Groups are found from TRL's `prompts` kwarg; a group whose lengths are all equal gets 0.

    >>> LengthPenalty()(["<think>a</think> 1", "<think>a b c d</think> 1"], answer=["1", "1"], prompts=["q", "q"])
    [0.5, -0.5]
    """

    name = "length_penalty"

    def __call__(self, completions: list[Any], completion_ids: list[list[int]] | None = None, **kwargs: Any):
        texts = completion_texts(completions)
        n = len(texts)
        lengths = completion_lengths(texts, completion_ids)
        correct = _correctness(texts, kwargs)
        groups: dict[str, list[int]] = {}
        for i, prompt in enumerate(column(kwargs, "prompts", n, "")):
            groups.setdefault(repr(prompt), []).append(i)
        rewards: list[float | None] = [None if c is None else 0.0 for c in correct]
        for members in groups.values():
            members = [i for i in members if correct[i] is not None]
            if not members:
                continue
            lo, hi = min(lengths[i] for i in members), max(lengths[i] for i in members)
            if hi == lo:
                continue
            for i in members:
                lam = 0.5 - (lengths[i] - lo) / (hi - lo)
                rewards[i] = lam if (correct[i] or 0.0) >= 1.0 else min(0.0, lam)
        return rewards


class Repetition(Reward):
    """N-gram repetition penalty, from 0 (no repeats) to `max_penalty` (all repeats).

    Yeo et al. 2025; open-r1: `max_penalty * (1 - unique/total)` over the whitespace-word n-grams of the
    completion (words, not token ids, so the value does not depend on the tokenizer). 0 for fewer than
    `ngram_size` words. Text of 60+ characters not spaced into words (mean "word" over 10 characters: `hahaha...`,
    Chinese or Japanese, `x=1+1=2;` repeated) is measured over character `char_ngram_size`-grams of its non-space
    characters instead: split on whitespace, it would be one or two "words" and never look repetitive.

    >>> Repetition(ngram_size=2, max_penalty=-1.0)(["a b c d", "a b a b a b"])
    [0.0, -0.6]
    """

    name = "repetition"

    def __init__(self, ngram_size: int = 3, max_penalty: float = -1.0, char_ngram_size: int = 6) -> None:
        super().__init__()
        if max_penalty > 0:
            raise ValueError("max_penalty must be <= 0 (it is a penalty)")
        if ngram_size < 1 or char_ngram_size < 1:
            raise ValueError("ngram_size and char_ngram_size must be >= 1")
        self.ngram_size, self.max_penalty, self.char_ngram_size = ngram_size, max_penalty, char_ngram_size

    def __call__(self, completions: list[Any], **kwargs: Any) -> list[float]:
        rewards = []
        for text in completion_texts(completions):
            units: Sequence[str] = text.lower().split()
            size = self.ngram_size
            chars = sum(len(word) for word in units)
            # Not spaced into words (and long enough that tags like `<think>...</think>` do not decide): characters.
            if chars >= _MIN_CHARS_FOR_CHAR_NGRAMS and chars > _MAX_MEAN_WORD_CHARS * max(1, len(units)):
                units, size = "".join(units), self.char_ngram_size
            if len(units) < size:
                rewards.append(0.0)
                continue
            ngrams = [tuple(units[i : i + size]) for i in range(len(units) - size + 1)]
            rewards.append(round((1 - len(set(ngrams)) / len(ngrams)) * self.max_penalty, 12) + 0.0)
        return rewards
