r"""The few answer shapes that math-verify's `parse` reads without its ANTLR LaTeX parser: same result, ~50x faster.

Most RL answers are an integer, a fraction or `x = 3`, alone or in one `\boxed{}`. Math-verify reads them
through latex2sympy's ANTLR grammar, 1-10 ms each (`x = 989` takes ~10 ms), which is most of a reward worker's
time. For exactly these shapes this module builds what `parse` returns ([sympy value, extracted string]), and
returns None for anything else, so the caller falls back to math-verify itself.

It is a shortcut, never a second definition: `tests/test_math_fastpath.py` checks, on thousands of generated
texts of these shapes and their near misses, that the result is identical to `math_verify.parse` (the sympy
structure and the string), and the Math-Verify suite agreement test runs through it. The guards are strict on
purpose: any `$`, `\(`, `[`, a second `\boxed`, `\fbox`, a percent sign or "final answer" leaves the text to
math-verify, because those change which match math-verify picks or how it converts it.
"""

from __future__ import annotations

import re
from typing import Any

_INT = r"-?(?:0|[1-9]\d{0,17})"
_FRAC = r"(-?)\\frac\{(0|[1-9]\d{0,8})\}\{([1-9]\d{0,8})\}"
# One lower-case Latin letter (latex2sympy lower-cases capitals), not e (Euler's number) or i (the imaginary
# unit), then `=` and an integer.
_EQ = rf"([a-df-hj-z]) ?= ?({_INT})"
_SLASH = r"(-?)(0|[1-9]\d{0,8})/([1-9]\d{0,8})"  # `7/5` inside `$...$`: math-verify writes it `\frac{7}{5}`
_PLAIN_INT = re.compile(_INT)
_SHAPES = (("int", re.compile(_INT)), ("frac", re.compile(_FRAC)), ("eq", re.compile(_EQ)))
_SLASH_SHAPE = re.compile(_SLASH)
# A whole candidate that is one `$...$` (how rlr hands math-verify a short gold answer such as `\frac{42}{35}`).
_DOLLAR = re.compile(r"\$([^$]{1,40})\$")
_BOXED = re.compile(r"\\boxed\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")
# Anything that can add a match math-verify would rank above the boxed one, or change how it converts it.
_UNSAFE = re.compile(r"[$\[%]|\\\(|\\fbox|percent|pct|final answer", re.IGNORECASE)

_sympy: Any = None


def _sympy_module() -> Any:
    global _sympy
    if _sympy is None:
        import sympy

        _sympy = sympy
    return _sympy


def _rational(numerator: int, denominator: int) -> Any:
    return _sympy_module().Rational(numerator, denominator)


def _value(content: str) -> Any | None:
    """The sympy value latex2sympy gives `content`, for the three shapes; None for any other content."""
    sympy = _sympy_module()
    for shape, pattern in _SHAPES:
        match = pattern.fullmatch(content)
        if match is None:
            continue
        if shape == "int":
            return sympy.Integer(int(content))
        if shape == "frac":
            sign, numerator, denominator = match.groups()
            return _rational(-int(numerator) if sign else int(numerator), int(denominator))
        name, number = match.groups()
        return sympy.Eq(sympy.Symbol(name, real=True), sympy.Integer(int(number)))
    return None


def fast_parse(candidate: str) -> list | None:
    """What `math_verify.parse(candidate, rlr's targets)` returns, when the candidate is a plain integer, one
    `$...$` or one `\\boxed{}` of the three shapes; None when math-verify must read it."""
    if _PLAIN_INT.fullmatch(candidate):
        return [_value(candidate), candidate]
    dollar = _DOLLAR.fullmatch(candidate)
    if dollar is not None:
        content = dollar.group(1)
        slash = _SLASH_SHAPE.fullmatch(content)
        if slash is not None:
            sign, numerator, denominator = slash.groups()
            value = _rational(-int(numerator) if sign else int(numerator), int(denominator))
            return [value, f"\\frac{{{sign}{numerator}}}{{{denominator}}}"]
        value = _value(content)
        return None if value is None else [value, content]
    if candidate.count("\\boxed") != 1 or _UNSAFE.search(candidate):
        return None
    match = _BOXED.search(candidate)
    if match is None:
        return None
    content = match.group(1)
    value = _value(content)
    return None if value is None else [value, content]
