"""`code_tests`: the model submits code with a `run_tests` tool and gets the failing tests back, then may retry.

The row's tests (a `tests` column or `meta["tests"]`, as the `code_tests` reward reads them) are judged by
`rlr.sandbox.judge`: the code runs in one sandbox, the asserts in another, so nothing the code prints or patches
decides a verdict. The episode scores the fraction of tests its last submission passed.
"""

from __future__ import annotations

from typing import Any

MAX_SUBMISSIONS = 4
TIMEOUT_S = 5.0


class CodeTestsEnv:
    """One coding episode: submit, read the failures, fix, resubmit."""

    def __init__(self) -> None:
        self.tests: list[str] = []
        self.fraction, self.submissions = 0.0, 0

    def reset(self, tests: Any = None, meta: Any = None, **row: Any) -> None:
        """Start an episode on the row's tests (the prompt states the task)."""
        from rlr.rewards.code import row_tests

        self.tests = row_tests(tests, meta) or []
        self.fraction, self.submissions = 0.0, 0

    def run_tests(self, code: str) -> str:
        """Run the hidden tests against a complete Python solution and report which fail.

        Args:
            code: The full solution (all functions the task asks for).
        """
        from rlr.sandbox import run_judged

        if not self.tests:
            return "error: this task has no tests"
        if self.submissions >= MAX_SUBMISSIONS:
            return f"no submissions left ({MAX_SUBMISSIONS} used)"
        self.submissions += 1
        result = run_judged(str(code), self.tests, timeout_s=TIMEOUT_S)
        self.fraction = result.fraction
        failed = [f"{test}  -> {error}" for test, ok, error in zip(self.tests, result.passed, result.errors,
                                                                    strict=True) if not ok]
        head = f"passed {sum(result.passed)}/{len(self.tests)}"
        return head if not failed else head + "; failing:\n" + "\n".join(failed[:3])

    def get_reward(self) -> float:
        """The fraction of tests the last submission passed."""
        return self.fraction
