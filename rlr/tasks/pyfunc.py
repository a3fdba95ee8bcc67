"""Write a one-line Python function from input/output examples: the code task a 1M-parameter model learns on a CPU.

A row's hidden function is drawn from a small grammar: `x`, then 1..`max_ops` steps `e OP c` with OP from `ops`
and a constant c in 1..`max_const` (e.g. `(x+3)*2`). The question shows its values on the inputs 0, 1, ...,
`examples - 1` (`f(0)=6 f(1)=8 f(2)=10`); the completion is a ```python block defining `f`,
judged by `code_tests` in the sandbox against `tests` asserts on *other* inputs (held out: never in the prompt).

Functions whose shown values exceed `max_value` are redrawn. Every function of the grammar is affine (`m*x + k`,
m >= 1), so two examples already determine it, and the SFT target is its canonical form `x*m+k` whatever
expression produced it: one target per question, which a model can learn (`k = f(0)`, `m = f(1) - f(0)`).
With `trace` the block first shows that subtraction as a comment, as the arithmetic task's scratchpad does.
Questions depend on the function alone, so the eval split excluded from train (by question) is a set of held-out
*functions*, not re-phrasings of trained ones.

The verifier is `code_tests` itself (rows are scored as task `code`): only the tests decide, never the text.
"""

from __future__ import annotations

import dataclasses
import random
from typing import ClassVar

from rlr.errors import UserError
from rlr.tasks.base import ProceduralTask, knob

OPS = ("+", "-", "*")
_PRECEDENCE = {"+": 1, "-": 1, "*": 2}
#: test inputs are drawn from here, after the shown ones: large enough that a wrong slope or offset shows
TEST_INPUT_SPAN = 20
MAX_REDRAWS = 1000


@dataclasses.dataclass
class PyFuncTask(ProceduralTask):
    """`f` from its values on 0..examples-1; reward: the fraction of held-out asserts its code passes."""

    name = "pyfunc"
    scored_as: ClassVar[str | None] = "code"  # rows carry meta.tests and are judged by code_tests

    ops: list[str] = knob(["+", "-", "*"], "operators of the grammar, drawn uniformly: any of '+', '-', '*'")
    max_const: int = knob(9, "constants are drawn from 1..max_const")
    max_ops: int = knob(3, "each function applies 1..max_ops operations to x (uniformly)")
    max_value: int = knob(99, "functions whose shown values exceed this in size are redrawn (keeps numbers short)")
    examples: int = knob(3, "input/output examples shown in the prompt, at x = 0, 1, ... (at least 2)")
    tests: int = knob(3, "held-out asserts per problem, at distinct inputs after the shown ones")
    trace: bool = knob(False, "the solution shows `# f(1)-f(0)=...` before the return (an SFT scratchpad)")

    def __post_init__(self) -> None:
        if isinstance(self.ops, str):
            self.ops = [self.ops]
        bad = [op for op in self.ops if op not in OPS]
        if bad or not self.ops:
            raise UserError(f"pyfunc: ops={self.ops!r} is invalid; use a non-empty list of {list(OPS)}",
                            key="args.ops")
        self.ops = list(dict.fromkeys(self.ops))
        for field, lo, hi in (("max_const", 1, 9999), ("max_ops", 1, 4), ("max_value", 1, 10**6), ("examples", 2, 8),
                              ("tests", 1, TEST_INPUT_SPAN)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise UserError(f"pyfunc: {field}={value!r} is invalid; use an integer from {lo} to {hi}",
                                key=f"args.{field}")

    def make_row(self, rng: random.Random) -> dict:
        for _ in range(MAX_REDRAWS):  # redraw until the shown values fit max_value (rarely more than a few draws)
            text, prec, m, k = "x", 3, 1, 0
            for _ in range(rng.randint(1, self.max_ops)):
                op, c = rng.choice(self.ops), rng.randint(1, self.max_const)
                left = f"({text})" if prec < _PRECEDENCE[op] else text
                text, prec = f"{left}{op}{c}", _PRECEDENCE[op]
                m, k = (m * c, k * c) if op == "*" else (m, k + c if op == "+" else k - c)
            shown_values = [m * x + k for x in range(self.examples)]
            if max(abs(v) for v in shown_values) <= self.max_value:
                break
        else:
            raise UserError(f"pyfunc: no function of the grammar keeps its {self.examples} shown values within "
                            f"max_value={self.max_value} in {MAX_REDRAWS} draws; raise max_value or allow more ops",
                            key="args.max_value")
        shown = " ".join(f"f({x})={v}" for x, v in enumerate(shown_values))
        test_inputs = sorted(rng.sample(range(self.examples, self.examples + TEST_INPUT_SPAN), self.tests))
        tests = [f"assert f({x}) == {m * x + k}" for x in test_inputs]
        return {
            "question": shown,
            "answer": affine_text(m, k),
            "solution": solution_block(m, k, trace=self.trace),
            # tests: what code_tests runs (the judge holds them; the candidate never sees them)
            "meta": {"tests": tests, "expression": text, "m": m, "k": k},
        }

    def verify(self, completion: str, answer: str, meta: dict | None = None) -> float:
        """Fraction of `meta["tests"]` the completion's last ```python block passes, judged in the sandbox."""
        from rlr.rewards.code import CodeTests

        score = CodeTests()([completion], meta=[meta or {}])[0]
        if score is None:
            raise UserError("pyfunc verifier needs meta['tests'] (the held-out asserts); prepare the data with "
                            "task:pyfunc")
        return score


def affine_text(m: int, k: int) -> str:
    """The canonical expression of `m*x + k`: `x*3+1`, `x-2`, `x*4`."""
    body = "x" if m == 1 else f"x*{m}"
    return body + (f"+{k}" if k > 0 else f"-{-k}" if k < 0 else "")


def solution_block(m: int, k: int, *, trace: bool) -> str:
    """The SFT target: a ```python block defining `f` (with the slope's subtraction as a comment under `trace`)."""
    k_text = f"({k})" if k < 0 else str(k)
    comment = f"    # f(1)-f(0)={m + k}-{k_text}={m}\n" if trace else ""
    return f"```python\ndef f(x):\n{comment}    return {affine_text(m, k)}\n```"
