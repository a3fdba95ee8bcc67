"""Countdown (TinyZero, Stream-of-Search): combine the given numbers with + - * / to reach a target.

As in TinyZero, every number must be used exactly once; that makes the verifier a strict multiset check and rules
out the degenerate "answer with one number" solutions. The generator builds the target from a random expression
tree over all the numbers, so every problem is solvable and `solution` holds one valid equation. Intermediate
results stay positive integers no larger than `max_target`: the equations a model is shown never need fractions.

The verifier never calls `eval`: it allows only digits, `+ - * / ( )` and spaces, parses with `ast` and walks only
binary operators and integer constants, evaluating with exact fractions.
"""

from __future__ import annotations

import ast
import dataclasses
import random
import re
from collections import Counter
from fractions import Fraction

from rlr.errors import UserError
from rlr.tasks.base import ProceduralTask, answer_tag, knob, last_boxed, text_after_think

_ALLOWED = re.compile(r"^[\d+\-*/()\s]+$")
_MAX_EQUATION_CHARS = 300
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
_AST_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}

# (value, text, precedence of its top operator; 3 for a bare number)
_Node = tuple[int, str, int]


@dataclasses.dataclass
class CountdownTask(ProceduralTask):
    """Reach `target` with each of `numbers` used exactly once; reward 1.0 for a correct equation."""

    name = "countdown"

    num_numbers: int = knob(4, "how many numbers are given (all must be used); 3-4 is TinyZero's setting")
    max_number: int = knob(100, "numbers are drawn uniformly from 1..max_number")
    max_target: int = knob(1000, "upper bound on the target and on every intermediate result")
    format_score: float = knob(0.0, "reward for a well-formed but wrong equation (TinyZero used 0.1)")

    def __post_init__(self) -> None:
        for field in ("num_numbers", "max_number", "max_target"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"countdown: {field}={value!r} is invalid; use a positive integer",
                                key=f"args.{field}")
        if not 2 <= self.num_numbers <= 8:
            raise UserError(f"countdown: num_numbers={self.num_numbers} is invalid; use 2 to 8",
                            key="args.num_numbers")
        if self.max_number > self.max_target:
            raise UserError(
                f"countdown: max_number={self.max_number} exceeds max_target={self.max_target}; "
                "raise max_target or lower max_number"
            )
        if not 0.0 <= float(self.format_score) <= 1.0:
            raise UserError(f"countdown: format_score={self.format_score!r} is invalid; use a value in [0, 1]",
                            key="args.format_score")

    def make_row(self, rng: random.Random) -> dict:
        numbers = [rng.randint(1, self.max_number) for _ in range(self.num_numbers)]
        pool: list[_Node] = [(x, str(x), 3) for x in numbers]
        while len(pool) > 1:
            i, j = rng.sample(range(len(pool)), 2)
            left, right = pool[i], pool[j]
            pool = [node for k, node in enumerate(pool) if k not in (i, j)]
            pool.append(self._combine(left, right, rng))
        target, equation, _ = pool[0]
        question = (
            f"Using the numbers {numbers}, create an equation that equals {target}. Use each number exactly once, "
            "with + - * / and parentheses. Put the equation in <answer> </answer> tags, for example "
            "<answer> (1 + 2) / 3 </answer>."
        )
        return {
            "question": question,
            "answer": str(target),
            "solution": equation,
            # format_score travels with the row: rewards and evaluate rebuild the verifier from the task name alone
            "meta": {"numbers": numbers, "target": target, **({"format_score": self.format_score}
                                                                if self.format_score else {})},
        }

    def _combine(self, a: _Node, b: _Node, rng: random.Random) -> _Node:
        """Join two subtrees with a random operator whose result is a positive integer <= max_target.

        One always qualifies: `big - small` when the values differ, `x / x` when they are equal.
        """
        ops = ["+", "-", "*", "/"]
        rng.shuffle(ops)
        for op in ops:
            left, right = (a, b) if op in "+*" or a[0] >= b[0] else (b, a)
            x, y = left[0], right[0]
            value = {"+": x + y, "-": x - y, "*": x * y, "/": x // y}[op]
            if op == "/" and x % y:
                continue
            if 1 <= value <= self.max_target:
                return value, _join(left, op, right), _PRECEDENCE[op]
        raise AssertionError("unreachable: subtraction or x/x always qualifies")

    def verify(self, completion: str, answer: str, meta: dict | None = None) -> float:
        """1.0 for an equation that uses each number exactly once and equals the target (1e-6 tolerance).

        The equation is read from the last `<answer>` tag, else the last `\\boxed{}`, else the first line after
        `</think>`, else the completion's last non-empty line; a trailing `= target` is dropped.
        """
        meta = meta or {}
        numbers = meta.get("numbers", meta.get("nums"))
        if numbers is None:
            raise UserError(
                "countdown verifier needs meta['numbers'] (the given numbers); "
                "prepare the data with the countdown task or add that column"
            )
        target = meta.get("target", answer)
        equation = extract_equation(completion)
        if equation is None:
            return 0.0
        parsed = parse_equation(equation)
        if parsed is None:
            return 0.0
        value, used = parsed
        correct = (
            value is not None
            and Counter(used) == Counter(int(x) for x in numbers)
            and abs(float(value) - float(target)) < 1e-6
        )
        return 1.0 if correct else float(meta.get("format_score", self.format_score))


def _join(left: _Node, op: str, right: _Node) -> str:
    """Text of `left op right` with only the parentheses precedence requires."""
    prec = _PRECEDENCE[op]
    lt = f"({left[1]})" if left[2] < prec else left[1]
    rt = f"({right[1]})" if right[2] < prec or (right[2] == prec and op in "-/") else right[1]
    return f"{lt} {op} {rt}"


def extract_equation(completion: str) -> str | None:
    """The candidate equation of a completion (see `CountdownTask.verify`), or None when there is none."""
    text = answer_tag(completion) or last_boxed(completion)
    if text is None:
        after = text_after_think(completion)
        lines = [line.strip() for line in (after if after is not None else completion).splitlines() if line.strip()]
        if not lines:
            return None
        text = lines[0] if after is not None else lines[-1]
    text = text.split("=")[0].strip()
    return text or None


def parse_equation(equation: str) -> tuple[Fraction | None, list[int]] | None:
    """(value, numbers used) of a well-formed equation; value None on division by zero; None if malformed."""
    if len(equation) > _MAX_EQUATION_CHARS or not _ALLOWED.match(equation):
        return None
    try:
        tree = ast.parse(equation, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    used: list[int] = []

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.BinOp) and type(node.op) in _AST_OPS:
            x, y = walk(node.left), walk(node.right)
            op = _AST_OPS[type(node.op)]
            return x + y if op == "+" else x - y if op == "-" else x * y if op == "*" else x / y
        if isinstance(node, ast.Constant) and type(node.value) is int:
            used.append(node.value)
            return Fraction(node.value)
        raise ValueError(f"disallowed syntax: {type(node).__name__}")

    try:
        return walk(tree.body), used
    except ZeroDivisionError:
        return None, used
    except (ValueError, RecursionError):
        return None
