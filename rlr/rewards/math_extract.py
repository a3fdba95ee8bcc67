r"""What math-verify reads from a completion or a gold answer: the one place that decides it.

Math-verify's own extraction does the work (it joins several `\boxed{}`, reads Minerva's "The final answer
is $X$. I hope it is correct.", `$...$`, `\(...\)`, plain numbers with thousands separators). rlr only
chooses which part of the text it reads, and guards two places where math-verify's plain-number fallback
reads a wrong answer as right:

- Region: after the last `</think>` (the reasoning may hold tentative answers), inside the last
  `<answer>...</answer>`, after the last GSM8K `####` (to the end of its line).
- A short region with no words (`x=3`, `(3,2)`, `[0,1)`, `2\sqrt{2}`), or one word (`odd`), is read as one
  LaTeX expression: read as plain text, `(3,2)` and `[0,1)` give nothing and `2\sqrt{2}` gives 2.
- Bare LaTeX in prose (`the answer is 2\sqrt{2}`, `7!`, `10^{5}`, `12 \pi`) is put in `$...$` before
  math-verify sees it: its plain-number fallback would read the leading `2`, `7`, `10`, `12` and score
  `4\sqrt{2}` correct against 4. A LaTeX expression is never cut apart this way.

Everything here is a linear regex scan; math-verify then runs in a worker with a hard timeout
(`rlr.rewards.math_pool`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Bumped whenever what counts as correct changes: `rlr evaluate` will not reuse results scored by another definition.
DEFINITION = "math-verify-2"
_ANCHORS = ("$", "\\(", "\\[", "\\begin")
# Runs of whitespace-free chunks of math-like characters, joined by spaces.
_MATH_CHARS = r"[\w\\^{}()\[\]+\-*/=.,!'|<>]"
_BARE_MATH = re.compile(rf"{_MATH_CHARS}+(?:[ ]+{_MATH_CHARS}+)*")
# What makes a chunk LaTeX: a command, power, subscript, brace or factorial (no leading `x*`: that is quadratic)
_HAS_TEX = re.compile(r"\\[A-Za-z]|[\^_{]|\d!")
_SCIENTIFIC = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)[eE]([+-]?\d{1,3})(?!\w|\.\d)")
_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")
# One number: thousands separated by `,`, ` ` or `'` in groups of three, a decimal point or comma. `1, 2` is a list.
_PLAIN_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:[, ']\d{3})+|\d+)(?:[.,]\d+)?|[-+]?[.,]\d+")
_WORD = re.compile(r"[A-Za-z]{2,}")
_COMMAND = re.compile(r"\\[A-Za-z]+")
_ONE_WORD = re.compile(r"[A-Za-z]{1,20}\.?")
_SHORT_CHARS = 60  # a region this short without words is an answer, not prose
# Longer runs are left to math-verify as they are: no answer is that long, and sympy on a hostile 10k-character
# "expression" is what the worker timeout is for, not something to invite.
_MAX_WRAP_CHARS = 200


@dataclass(frozen=True)
class MathSettings:
    """The math-verify knobs a correctness reward exposes (math-verify's defaults)."""

    precision: int = 6  # float_rounding: decimal places compared for floats
    strict: bool = True  # False: variable and function names need not match (f(x) equals f(y))
    allow_set_relation_comp: bool = False  # True: a gold set may match an inequality (x in [-2,7] vs -2<=x<=7)

    def __post_init__(self) -> None:
        # Checked when a reward is built, so a preset typo (`precision: "6"`) fails at validate, not mid-training.
        if isinstance(self.precision, bool) or not isinstance(self.precision, int) or not 0 <= self.precision <= 15:
            raise ValueError(f"precision must be a whole number of decimal places, 0 to 15, not {self.precision!r}")
        for name in ("strict", "allow_set_relation_comp"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")

    @classmethod
    def of(cls, data: dict[str, Any] | None) -> MathSettings:
        return cls(**(data or {}))

    def as_dict(self) -> dict[str, Any]:
        return {"precision": self.precision, "strict": self.strict,
                "allow_set_relation_comp": self.allow_set_relation_comp}  # fmt: skip


def answer_region(text: str) -> tuple[str, bool]:
    """The part of a completion that holds its final answer (see the module doc), and whether a delimiter
    (`</think>`, `<answer>`, `####`) set it apart from the rest."""
    delimited = False
    if "</think>" in text:
        text, delimited = text.rpartition("</think>")[2], True
    end = text.rfind("</answer>")
    start = text.rfind("<answer>", 0, end) if end >= 0 else -1
    if start >= 0:
        text, delimited = text[start + len("<answer>") : end], True
    if "####" in text:
        text, delimited = text.rpartition("####")[2].strip().split("\n", 1)[0], True
    return text.strip(), delimited


def _is_bare_answer(text: str) -> bool:
    """Short, no `$`, and no words once LaTeX commands are dropped: `x = 3`, `(3,2)`, `\\frac{1}{2}`, `E`."""
    return (
        0 < len(text) <= _SHORT_CHARS
        and not any(a in text for a in _ANCHORS)
        and "\\boxed" not in text
        and "\\fbox" not in text
        and not _WORD.search(_COMMAND.sub("", text))
        and "\n" not in text
    )


def _wrap_bare_latex(text: str) -> str:
    """Put each run of bare LaTeX outside `$...$` into `$...$`, so math-verify reads it whole; `1.5e3` becomes
    `$1.5\\cdot 10^{3}$` (math-verify's number reader would stop at the `e` and read 1.5)."""
    if any(a in text for a in _ANCHORS[1:]):
        return text
    parts = _UNESCAPED_DOLLAR.split(text)
    for i in range(0, len(parts), 2):  # even parts are outside math mode
        part = _SCIENTIFIC.sub(r"\1\\cdot 10^{\2}", parts[i])
        parts[i] = _BARE_MATH.sub(_wrap_run, part) if _HAS_TEX.search(part) else part
    return "$".join(parts)


def _wordless(chunk: str) -> bool:
    return not _WORD.search(_COMMAND.sub("", chunk))


def _wrap_run(match: re.Match[str]) -> str:
    """Wrap the wordless stretches of a run of math-like chunks that hold LaTeX (`<|im_start|>user` is no math)."""
    out: list[str] = []
    group: list[str] = []
    for chunk in [*match.group(0).split(" "), None]:
        if chunk is not None and chunk and _wordless(chunk):
            group.append(chunk)
            continue
        if group:
            run = " ".join(group)
            if len(run) <= _MAX_WRAP_CHARS and _HAS_TEX.search(run) and "\\boxed" not in run and "\\fbox" not in run:
                body = run.rstrip(".,;:")  # plain numbers are math-verify's; boxed is found without help
                run = f"${body}${run[len(body):]}"
            out.append(run)
            group = []
        if chunk is not None:
            out.append(chunk)
    return " ".join(out)


def math_candidates(text: str, gold: bool = False) -> list[str]:
    """The texts to hand to math-verify's `parse`, best first (the first one that yields anything is used).

    A one-word answer (`odd`) is read as such in a gold answer or a delimited region; elsewhere a one-word
    completion ("nothing") is no answer.
    """
    region, delimited = answer_region(text)
    if not region:
        return []
    if (gold or delimited) and _ONE_WORD.fullmatch(region):
        return [f"${region.rstrip('.')}$"]
    if _PLAIN_NUMBER.fullmatch(region):  # `1 000`, `1,000.5`, `1000,99`: math-verify's number reader knows them
        return [region, f"${region}$"]
    if _is_bare_answer(region):
        return [f"${region.rstrip('.').strip()}$", region]
    return [_wrap_bare_latex(region)]
