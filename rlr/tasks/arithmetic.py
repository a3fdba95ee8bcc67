"""Integer arithmetic with a column-wise scratchpad: the task a 1M-parameter model learns on a CPU in minutes.

The addition trace is the exact format that was measured to train the tiny model: for `69+16=` the target
completion is `<think>9+6+0=15 6+1+1=8</think> 85` -- one `a+b+carry=sum` step per column from the ones digit,
then the answer after `</think>`. Keep it byte-for-byte; tokenizers and presets are built around it.

Subtraction and multiplication follow the same spirit:
- `63-27=` -> `<think>13-7-0=6 6-2-1=3</think> 36`: one `a-b-borrow=diff` step per column from the ones digit,
  where a column that must borrow shows its top digit plus ten (`13`). Operands are ordered so the result is
  never negative.
- `69*16=` -> `<think>69*6=414 69*10=690 414+690=1104</think> 1104`: one partial product per digit of the second
  operand (that digit times its place value), then their sum (skipped when there is a single partial product).

Each operand has exactly `digits` digits (0-9 when `digits` is 1), so every problem of a setting has the same
trace length: the tiny model's 256 positions fit 4-digit addition comfortably.

With `tool: calculator` the SFT target is a tool-use trace instead (meta["solution_turns"], TRL's message format):
the assistant calls `calculator(expression="69*16")`, the tool replies `1104`, the assistant answers `1104`. It is
the task a model cannot do alone but can with the tool (3-digit multiplication for the tiny model): what it has to
learn is to copy the operands into the call and the tool's reply into its answer.
"""

from __future__ import annotations

import dataclasses
import random
from decimal import Decimal, InvalidOperation

from rlr.errors import UserError
from rlr.tasks.base import ProceduralTask, answer_tag, knob, last_boxed, last_number, text_after_think

OPS = ("+", "-", "*")
TOOLS = ("calculator",)  # the built-in tools a trace can call (rlr/tools/calculator.py)


@dataclasses.dataclass
class ArithmeticTask(ProceduralTask):
    """`a op b=` with an optional column-wise trace as the SFT target; exact-match numeric reward."""

    name = "arithmetic"

    digits: int = knob(2, "digits per operand (each operand has exactly this many; 1 means 0-9)")
    ops: list[str] = knob(["+"], "operators to draw from, uniformly: any of '+', '-', '*'")
    trace: bool = knob(True, "solution is '<think>trace</think> answer' (an SFT target); false: the answer alone")
    tool: str = knob("", "'calculator': the SFT target is a tool-use trace (call calculator, answer its reply); "
                         "the preset lists the tool in rl.tools")

    def __post_init__(self) -> None:
        if isinstance(self.digits, bool) or not isinstance(self.digits, int) or not 1 <= self.digits <= 18:
            raise UserError(f"arithmetic: digits={self.digits!r} is invalid; use an integer from 1 to 18",
                            key="args.digits")
        if isinstance(self.ops, str):
            self.ops = [self.ops]
        bad = [op for op in self.ops if op not in OPS]
        if bad or not self.ops:
            raise UserError(f"arithmetic: ops={self.ops!r} is invalid; use a non-empty list of {list(OPS)}",
                            key="args.ops")
        self.ops = list(dict.fromkeys(self.ops))  # drop repeats so each operator is equally likely
        if self.tool not in ("", *TOOLS):
            raise UserError(f"arithmetic: tool={self.tool!r} is invalid; use one of {list(TOOLS)} or leave it unset",
                            key="args.tool")

    def make_row(self, rng: random.Random) -> dict:
        lo = 0 if self.digits == 1 else 10 ** (self.digits - 1)
        hi = 10**self.digits - 1
        op = rng.choice(self.ops)
        a, b = rng.randint(lo, hi), rng.randint(lo, hi)
        if op == "-" and a < b:
            a, b = b, a
        steps, result = TRACES[op](a, b)
        meta: dict = {"a": a, "b": b, "op": op}
        if self.tool:
            solution = str(result)  # the final reply; the whole episode is the trace below
            meta["solution_turns"] = tool_trace(self.tool, f"{a}{op}{b}", str(result))
        else:
            solution = f"<think>{' '.join(steps)}</think> {result}" if self.trace else str(result)
        return {"question": f"{a}{op}{b}=", "answer": str(result), "solution": solution, "meta": meta}

    def verify(self, completion: str, answer: str, meta: dict | None = None) -> float:
        """1.0 when the number after `</think>` (else the completion's last number) equals `answer`; no partial credit.

        After `</think>` an `<answer>` tag or `\\boxed{}` is honoured, then the last number of that text counts.
        """
        after = text_after_think(completion)
        if after is None:
            candidate = last_number(completion)
        else:
            candidate = last_number(answer_tag(after) or last_boxed(after) or after)
        if candidate is None:
            return 0.0
        try:
            return 1.0 if Decimal(candidate) == Decimal(str(answer).strip().replace(",", "")) else 0.0
        except InvalidOperation:
            return 0.0


def tool_trace(tool: str, expression: str, reply: str) -> list[dict]:
    """One tool call, its reply and the final answer, as TRL's messages (what SFT renders with the chat template)."""
    call = {"type": "function", "function": {"name": tool, "arguments": {"expression": expression}}}
    return [{"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "name": tool, "content": reply},
            {"role": "assistant", "content": reply}]


def _digits(x: int, width: int) -> list[int]:
    """Digits of `x` from the ones place, zero-padded to `width`."""
    return [int(ch) for ch in reversed(str(x).zfill(width))]


def add_trace(a: int, b: int) -> tuple[list[str], int]:
    width = max(len(str(a)), len(str(b)))
    steps, carry = [], 0
    for x, y in zip(_digits(a, width), _digits(b, width), strict=True):
        total = x + y + carry
        steps.append(f"{x}+{y}+{carry}={total}")
        carry = total // 10
    return steps, a + b


def sub_trace(a: int, b: int) -> tuple[list[str], int]:
    """Requires a >= b."""
    width = len(str(a))
    steps, borrow = [], 0
    for x, y in zip(_digits(a, width), _digits(b, width), strict=True):
        top = x + 10 if x - y - borrow < 0 else x
        steps.append(f"{top}-{y}-{borrow}={top - y - borrow}")
        borrow = 1 if top != x else 0
    return steps, a - b


def mul_trace(a: int, b: int) -> tuple[list[str], int]:
    partials = []
    steps = []
    for place, d in enumerate(_digits(b, len(str(b)))):
        factor = d * 10**place
        partials.append(a * factor)
        steps.append(f"{a}*{factor}={a * factor}")
    if len(partials) > 1:
        steps.append("+".join(map(str, partials)) + f"={sum(partials)}")
    return steps, a * b


TRACES = {"+": add_trace, "-": sub_trace, "*": mul_trace}
