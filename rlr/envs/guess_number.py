"""`guess_number`: find a secret whole number with a `guess` tool that answers higher / lower / correct.

The smallest multi-turn task with feedback: no single completion can solve it without the replies (the secret is in
no prompt), a binary search solves it in log2(range) calls, and the episode's reward comes from the environment's
own state, not from parsing the final text.
"""

from __future__ import annotations

import random
from typing import Any

LOW, HIGH = 1, 100
MAX_GUESSES = 8  # a binary search over 1..100 needs at most 7


def question(low: int = LOW, high: int = HIGH) -> str:
    return (f"I am thinking of a whole number from {low} to {high}. Find it with the guess tool, which answers "
            "higher, lower or correct. When it says correct, reply with the number.")


OPENING_MOVE = '<tool_call>{"name": "guess", "arguments": {"number": 50}}</tool_call>'


def generate_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """Rows for `data.train.source: env:guess_number`: the answer column is the secret the episode resets to; the
    solution is a binary search's first move, a one-turn tool-use trace for an SFT cold start (`rlr sft`)."""
    rng = random.Random(seed)
    return [{"question": question(), "answer": str(rng.randint(LOW, HIGH)), "solution": OPENING_MOVE,
             "task": "numeric", "meta": {}} for _ in range(n)]


class GuessNumberEnv:
    """One episode of guess-the-number."""

    def __init__(self) -> None:
        self.secret, self.guesses, self.solved = LOW, 0, False

    def reset(self, answer: str | None = None, **row: Any) -> None:
        """Start an episode with the row's secret (the prompt already says what to do)."""
        self.secret = int(answer) if answer not in (None, "") else random.randint(LOW, HIGH)
        self.guesses, self.solved = 0, False

    def guess(self, number: int) -> str:
        """Guess the secret number.

        Args:
            number: A whole number from 1 to 100.

        Returns:
            higher, lower or correct.
        """
        if self.solved:
            return "correct (already found)"
        if self.guesses >= MAX_GUESSES:
            return f"no guesses left ({MAX_GUESSES} used)"
        self.guesses += 1
        value = int(float(number))  # a model may send "42" or 42.0
        if value == self.secret:
            self.solved = True
            return "correct"
        return "higher" if value < self.secret else "lower"

    def get_reward(self) -> float:
        """1 for finding the number, less the more guesses it took (a binary search scores about 0.6 or more)."""
        return 1.0 - 0.05 * (self.guesses - 1) if self.solved else 0.0
