"""Find the final answer in a completion: the one extractor behind every reward and `rlr evaluate`.

When the completion has a `</think>`, only the text after the last one is searched: the reasoning may hold
tentative answers (as in TRL's `reasoning_accuracy_reward`). Then, first match wins: the last
`\\boxed{...}` (braces balanced, so `\\boxed{\\frac{1}{2}}` works; for `\\boxed{\\boxed{7}}` the inner `7`),
the last `<answer>...</answer>`, the whole short text after `</think>`, "the answer is X", the last number.
Everything here is a linear scan or a simple regex without nested quantifiers, so a hostile completion
cannot make extraction slow (it runs in the trainer process, outside the math-verify timeout).
"""

from __future__ import annotations

import re

_THE_ANSWER_IS = re.compile(r"answer is[:\s]*([^\n]+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_MAX_TAIL_CHARS = 40  # text after </think> longer than this is prose, not an answer: look inside it instead
_MAX_BOXED_TRIES = 5  # unclosed \boxed{ are skipped; bounding the retries keeps the scan linear


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`), with nested braces; None when absent or unclosed.

    >>> last_boxed(r"so \\boxed{\\frac{1}{2}}.")
    '\\\\frac{1}{2}'
    """
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    for _ in range(_MAX_BOXED_TRIES):
        if start < 0:
            break
        brace = text.find("{", start)
        if brace >= 0 and re.fullmatch(r"\\(?:boxed|fbox)\s*", text[start:brace]):
            depth = 0
            for i in range(brace, len(text)):
                if text[i] == "{":
                    depth += 1
                elif text[i] == "}":
                    depth -= 1
                    if depth == 0:
                        return text[brace + 1 : i].strip()
        # Unclosed or malformed: try the previous one.
        start = max(text.rfind("\\boxed", 0, start), text.rfind("\\fbox", 0, start))
    return None


def _last_answer_tag(text: str) -> str | None:
    """Content of the last `<answer>...</answer>` (two rfind calls: a regex would be quadratic on many opens)."""
    end = text.rfind("</answer>")
    start = text.rfind("<answer>", 0, end) if end >= 0 else -1
    return text[start + len("<answer>") : end].strip() if start >= 0 else None


def _strip_answer(candidate: str) -> str:
    candidate = candidate.strip().rstrip(".").strip()
    if candidate.startswith("$") and candidate.endswith("$") and len(candidate) > 1:
        candidate = candidate.strip("$").strip()
    return candidate


def extract_answer(text: str) -> str | None:
    """The final answer in `text`, or None when nothing answer-like is found.

    >>> extract_answer(r"<think>2+2</think> The answer is \\boxed{4}.")
    '4'
    >>> extract_answer("<think>17+25=42</think> 42")
    '42'
    >>> extract_answer("So we get 3 apples and then 5.")
    '5'
    """
    if not text:
        return None
    thought = "</think>" in text
    if thought:  # the reasoning is over: never take an answer from inside it
        text = text.rpartition("</think>")[2].strip()
    boxed = last_boxed(text)
    if boxed:  # an empty \boxed{} is no answer
        return boxed
    inner = _last_answer_tag(text)
    if inner:
        return last_boxed(inner) or _strip_answer(inner)
    if thought and text and len(text) <= _MAX_TAIL_CHARS and "answer is" not in text.lower():
        return _strip_answer(text)
    said = _THE_ANSWER_IS.findall(text)
    if said and _strip_answer(said[-1]):
        return _strip_answer(said[-1])
    numbers = _NUMBER.findall(text)
    if numbers:
        return numbers[-1].replace(",", "")
    return None
