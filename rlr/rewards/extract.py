"""Find the final answer in a completion as text: the "exact" and "numeric" tasks, and what `rlr evaluate` shows
and votes on. (The "math" task does not use it: math-verify reads the completion itself, `rlr.rewards.math_extract`.)

When the completion has a `</think>`, only the text after the last one is searched: the reasoning may hold
tentative answers (as in TRL's `reasoning_accuracy_reward`). Then, first match wins: the last
`\\boxed{...}` (braces balanced, so `\\boxed{\\frac{1}{2}}` works; for `\\boxed{\\boxed{7}}` the inner `7`),
the last `<answer>...</answer>`, the line after a GSM8K `####`, the whole short text after `</think>`, "the answer
is X" (Minerva's "The final answer is $X$. I hope it is correct." too), the last number. The last number is never
cut out of a LaTeX expression (`4\\sqrt{2}` stays whole) and comma-separated numbers are never merged (`(3,2)` is
not 32; `1,250` with thousands separators is 1250).
Everything here is a linear scan or a simple regex without nested quantifiers, so a hostile completion
cannot make extraction slow (it runs in the trainer process, outside the math-verify timeout).
"""

from __future__ import annotations

import re

_THE_ANSWER_IS = re.compile(r"answer is[:\s]*([^\n]+)", re.IGNORECASE)
_I_HOPE = re.compile(r"\.?\s*I hope it is correct\.?\s*$", re.IGNORECASE)  # Minerva's sign-off
_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,]*\d)|-?\d+(?:\.\d+)?|-?\.\d+")
_TEX = re.compile(r"\\[A-Za-z]|[\^_{}!]")
_BRACKETED = re.compile(r"[(\[][^()\[\]]*,[^()\[\]]*[)\]]")
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
    candidate = _I_HOPE.sub("", candidate.strip()).rstrip(".").strip()
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
    if "####" in text:
        tail = _strip_answer(text.rpartition("####")[2].strip().split("\n", 1)[0])
        if tail:
            return tail.replace(",", "") if _NUMBER.fullmatch(tail) else tail
    if thought and text and len(text) <= _MAX_TAIL_CHARS and "answer is" not in text.lower():
        return _strip_answer(text)
    said = _THE_ANSWER_IS.findall(text)
    if said and _strip_answer(said[-1]):
        return _strip_answer(said[-1])
    return _last_number(text)


def _last_number(text: str) -> str | None:
    """The last number, or the whole whitespace-free LaTeX chunk or tuple it belongs to (`2\\sqrt{2}`, `7!`,
    `(3,2)`)."""
    numbers = list(_NUMBER.finditer(text))
    if not numbers:
        return None
    last = numbers[-1]
    start = max(text.rfind(" ", 0, last.start()), text.rfind("\n", 0, last.start())) + 1
    ends = [i for i in (text.find(" ", last.end()), text.find("\n", last.end())) if i >= 0]
    chunk = text[start : min(ends, default=len(text))].strip().rstrip(".,;:").strip("$")
    if _TEX.search(chunk) or _BRACKETED.fullmatch(chunk):  # `(3,2)`, `[0,1)`: a tuple or interval, whole
        return chunk
    return last.group(0).replace(",", "")
