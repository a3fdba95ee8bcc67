"""`calculator`: arithmetic on numbers, parsed with `ast` and walked node by node (never `eval`).

Bounded on purpose: a model may write `9**9**9` or `10**100000`; exponents, operand sizes and the expression length
are capped, so one call cannot hang or exhaust memory in the trainer's process.
"""

from __future__ import annotations

import ast
import math
import operator

MAX_CHARS = 200
MAX_EXPONENT = 100
MAX_DIGITS = 100  # |operands and results| < 10**MAX_DIGITS

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


class CalculatorError(ValueError):
    """Raised to TRL's tool loop, which replies {"error": message} to the model and counts a tool failure."""


def _check_size(value: float) -> float:
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError("result is not a finite number")
    if abs(value) >= 10**MAX_DIGITS:
        raise CalculatorError(f"number too large (limit 1e{MAX_DIGITS})")
    return value


def _eval(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _check_size(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise CalculatorError(f"exponent {right} too large (limit {MAX_EXPONENT})")
        try:
            return _check_size(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError:
            raise CalculatorError("division by zero") from None
        except OverflowError:
            raise CalculatorError("number too large") from None
    raise CalculatorError(f"unsupported syntax: {type(node).__name__} (only numbers, + - * / // % ** and parentheses)")


def evaluate(expression: str) -> float:
    """The value of `expression`; CalculatorError on anything but bounded arithmetic on numbers."""
    if len(expression) > MAX_CHARS:
        raise CalculatorError(f"expression longer than {MAX_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError) as e:
        raise CalculatorError(f"not an arithmetic expression ({type(e).__name__})") from None
    return _eval(tree)


def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression and return its value.

    Args:
        expression: Numbers with + - * / // % ** and parentheses, e.g. "(12 + 3) * 45".
    """
    try:
        value = evaluate(str(expression))
    except RecursionError:
        raise CalculatorError("expression nested too deeply") from None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value = int(value)  # 6/3 -> "2", as a person would write it
    return str(value)
