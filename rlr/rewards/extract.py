"""Find the final answer in a completion: the one extractor behind every reward and `rlr evaluate`.

Order (first that matches wins): the last `\\boxed{...}` (braces balanced, so `\\boxed{\\frac{1}{2}}` works),
the last `<answer>...</answer>`, the text after the last `</think>`, "the answer is X", the last number.
Everything here is a linear scan or a simple regex without nested quantifiers, so a hostile completion
cannot make extraction slow (it runs in the trainer process, outside the math-verify timeout).
"""

from __future__ import annotations

import re

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
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


def _strip_answer(candidate: str) -> str:
    candidate = candidate.strip()
    if candidate.startswith("$") and candidate.endswith("$") and len(candidate) > 1:
        candidate = candidate.strip("$").strip()
    return candidate.rstrip(".").strip()


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
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    tags = _ANSWER_TAG.findall(text)
    if tags and tags[-1].strip():
        inner = tags[-1]
        return last_boxed(inner) or _strip_answer(inner)
    if "</think>" in text:
        tail = text.rpartition("</think>")[2].strip()
        if tail and len(tail) <= _MAX_TAIL_CHARS and "answer is" not in tail.lower():
            return _strip_answer(tail)
        text = tail  # the reasoning is over: never take an answer from inside it
        if not text:
            return None
    said = _THE_ANSWER_IS.findall(text)
    if said and _strip_answer(said[-1]):
        return _strip_answer(said[-1])
    numbers = _NUMBER.findall(text)
    if numbers:
        return numbers[-1].replace(",", "")
    return None
