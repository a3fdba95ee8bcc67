"""The math-verify shortcut (rlr.rewards.math_fastpath) against math-verify itself, on generated texts.

The outside truth is `math_verify.parse` with rlr's extraction targets: wherever the shortcut answers, its
answer must be identical (sympy structure by `srepr`, and the extracted string). Near misses (decimals,
percent signs, two boxes, `$...$` around a box, "final answer", e and i, spaces) are generated on purpose:
the shortcut must leave them to math-verify or agree with it. Two seeds, and the shortcut must take most
of the in-shape texts, so that the test cannot pass by answering nothing.
"""

from __future__ import annotations

import random

import pytest

sympy = pytest.importorskip("sympy")
pytest.importorskip("math_verify")

from rlr.rewards import math_check  # noqa: E402
from rlr.rewards.math_fastpath import fast_parse  # noqa: E402

LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _number(rng: random.Random) -> str:
    return str(rng.choice([0, 1, 7, rng.randint(-99, 999), rng.randint(-10**12, 10**12), 10**17, -(10**18) + 1]))


def _content(rng: random.Random) -> str:
    kind = rng.randrange(9)
    if kind == 0:
        return _number(rng)
    if kind == 1:
        sign = rng.choice(["", "-"])
        return f"{sign}\\frac{{{rng.randint(0, 500)}}}{{{rng.randint(1, 500)}}}"
    if kind == 2:
        return f"{rng.choice(LETTERS)}{rng.choice(['=', ' = ', ' =', '= '])}{_number(rng)}"
    if kind == 3:
        return f"{rng.choice(['', '-'])}{rng.randint(0, 300)}/{rng.randint(1, 300)}"
    # near misses: each must be left to math-verify or read exactly as math-verify reads it
    return rng.choice([
        f"{rng.randint(0, 99)}.{rng.randint(0, 99)}", f"0{rng.randint(1, 9)}", f"+{rng.randint(1, 9)}",
        f"{rng.randint(1, 9)},{rng.randint(100, 999)}", f"\\frac{{{rng.randint(1, 9)}}}{{0}}",
        f"\\dfrac{{1}}{{{rng.randint(2, 9)}}}", f"{rng.randint(1, 9)}\\%", " 5 ", "x = y", "-0", "--5",
        f"\\frac{{-{rng.randint(1, 9)}}}{{{rng.randint(2, 9)}}}", f"x=\\frac{{1}}{{{rng.randint(2, 9)}}}",
        f"{rng.randint(1, 9)}\\sqrt{{2}}", "\\infty", f"e = {rng.randint(1, 9)}", f"i={rng.randint(1, 9)}",
    ])


def _candidate(rng: random.Random) -> str:
    content = _content(rng)
    boxed = f"\\boxed{{{content}}}"
    return rng.choice([
        content,
        f"${content}$",
        boxed,
        f"so the answer is {boxed}.",
        f"{boxed} and then {{x}}",
        f"Thus {boxed}, done",
        f"${boxed}$",
        f"$$ {boxed} $$",
        f"{boxed}%",
        f"{boxed} percent",
        f"\\boxed{{{_number(rng)}}} and \\boxed{{{content}}}",
        f"The final answer is ${content}$. I hope it is correct. {boxed}",
        f"\\fbox{{{content}}} {boxed}",
        f"[ {boxed} ]",
        f"\\({content}\\) {boxed}",
        f"x = {rng.randint(1, 9)}, {boxed}",
    ])


def _same(fast: list, slow: list) -> bool:
    return (len(fast) == len(slow) == 2 and sympy.srepr(fast[0]) == sympy.srepr(slow[0])
            and fast[1] == slow[1])


@pytest.mark.parametrize("seed", [0, 1])
def test_fast_parse_is_identical_to_math_verify_wherever_it_answers(seed):
    math_check._load()
    rng = random.Random(seed)
    answered, differ = 0, []
    texts = [_candidate(rng) for _ in range(3000)]
    for text in texts:
        fast = fast_parse(text)
        if fast is None:
            continue
        answered += 1
        slow = math_check._parse(text, math_check._targets, parsing_timeout=None)
        if not _same(fast, slow):
            differ.append((text, fast, slow))
    assert not differ, f"{len(differ)} of {answered} differ from math-verify, e.g. {differ[:3]}"
    assert answered > len(texts) * 0.1, answered  # ~1 in 6 generated texts is in shape and unguarded


def test_fast_parse_leaves_what_it_does_not_know_to_math_verify():
    for text in [r"\boxed{0.5}", r"$\boxed{5}$", r"\boxed{5}\%", r"\boxed{1} and \boxed{2}", r"\boxed{e = 2}",
                 r"The final answer is \boxed{5}", r"\boxed{\sqrt{2}}", "007", "1,000", r"\boxed{ 5 }"]:
        assert fast_parse(text) is None, text
    for text in ["42", "-7", r"\boxed{42}", r"so \boxed{x = -3}.", r"\boxed{\frac{6}{4}}", "$7/5$", r"$\frac{1}{2}$"]:
        assert fast_parse(text) is not None, text


def test_verify_math_scores_the_same_through_the_shortcut():
    """End to end: the worker's verify_math with and without the shortcut, on the throughput bench's mix."""
    from rlr.rewards.math_extract import math_candidates

    rng = random.Random(3)
    pairs = []
    for _ in range(300):
        a, b = rng.randint(-50, 500), rng.randint(1, 60)
        pairs += [(f"<think>{a}</think> \\boxed{{{a}}}", str(a + rng.randint(0, 1))),
                  (f"\\boxed{{x = {a}}}", str(a)), (f"so \\boxed{{\\frac{{{a}}}{{{b}}}}}", f"{a}/{b}"),
                  (f"The answer is {a}", f"\\frac{{{a * b}}}{{{b}}}")]

    def slow_parse(text: str, gold: bool = False) -> list:
        for candidate in math_candidates(text, gold):
            parsed = math_check._parse(candidate, math_check._targets, parsing_timeout=None)
            if parsed:
                return parsed
        return []

    fast_scores = [math_check.verify_math(c, a) for c, a in pairs]
    slow_scores = []
    for completion, answer in pairs:
        gold, predicted = slow_parse(answer, gold=True), slow_parse(completion)
        same = math_check._verify(gold, predicted, float_rounding=6, strict=True, allow_set_relation_comp=False,
                                  timeout_seconds=None) if gold and predicted else False
        slow_scores.append(1.0 if same else 0.0)
    assert [s for s, _ in fast_scores] == slow_scores
    assert 0.2 < sum(slow_scores) / len(slow_scores) < 0.9  # both right and wrong answers in the mix
