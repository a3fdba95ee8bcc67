"""`code_tests`: run the completion's last Python block against the row's tests, in the sandbox.

The program is the extracted code followed by a harness that runs each test (an assert statement) and
prints one marker line per passing test. The marker carries a random nonce chosen per run, and the
sandbox deletes `main.py` before the code starts, so printing fake markers does not pay; code that digs
the nonce out of its own code object could still forge them (a known limit: tests run in the same process
as the code). A crash, timeout or `sys.exit` before the harness scores the unreported tests as 0.
Tests come from a `tests` column (list or JSON list) or from `meta` JSON `{"tests": [...]}`; a row
without tests scores None (TRL skips it).
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from rlr.rewards.base import Reward
from rlr.rewards.common import column, completion_texts
from rlr.rewards.correctness import parse_meta
from rlr.sandbox import run_many

_FENCE = re.compile(r"```(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)

_HARNESS = """

def __rlr_run_tests(tests, marker):
    import sys
    for index, test in enumerate(tests):
        try:
            exec(test, globals())
        except BaseException:
            continue
        sys.stdout.write("\\n%s %d\\n" % (marker, index))
        sys.stdout.flush()


__rlr_run_tests({tests}, {marker})
"""


def extract_code(text: str) -> str | None:
    """The last fenced ```python block (or bare ``` block); None when there is none.

    >>> extract_code("try:\\n```python\\nx = 1\\n```\\nthen\\n```python\\nx = 2\\n```")
    'x = 2\\n'
    """
    blocks = _FENCE.findall(text)
    return blocks[-1] if blocks else None


def row_tests(tests: Any, meta: Any) -> list[str] | None:
    """Test statements of a row, from its `tests` column or `meta["tests"]`."""
    if isinstance(tests, str):
        try:
            tests = json.loads(tests)
        except ValueError:
            tests = [tests]
    if tests is None:
        tests = parse_meta(meta).get("tests")
    if not tests:
        return None
    return [str(t) for t in tests]


class CodeTests(Reward):
    """Fraction of the row's tests that the completion's last ```python block passes, run in the sandbox.

    >>> code = "```python\\ndef f(x):\\n    return 2 * x\\n```"
    >>> CodeTests()([code], tests=[["assert f(1) == 2", "assert f(2) == 5"]])
    [0.5]
    """

    name = "code_tests"
    measures_correctness = True

    def __init__(self, timeout_s: float = 5.0, memory_mb: int = 512, workers: int = 2) -> None:
        super().__init__()
        self.timeout_s, self.memory_mb, self.workers = timeout_s, memory_mb, workers

    def __call__(self, completions: list[Any], **kwargs: Any) -> list[float | None]:
        texts = completion_texts(completions)
        n = len(texts)
        all_tests = [
            row_tests(t, m) for t, m in zip(column(kwargs, "tests", n), column(kwargs, "meta", n), strict=True)
        ]
        rewards: list[float | None] = [None if t is None else 0.0 for t in all_tests]
        jobs, programs, markers = [], [], []
        for i, (text, tests) in enumerate(zip(texts, all_tests, strict=True)):
            code = extract_code(text)
            if tests is None or code is None:
                continue
            marker = f"__rlr_passed_{secrets.token_hex(8)}__"
            jobs.append(i)
            markers.append(marker)
            programs.append(code + _HARNESS.format(tests=repr(tests), marker=repr(marker)))
        results = run_many(programs, workers=self.workers, timeout_s=self.timeout_s, memory_mb=self.memory_mb)
        for i, marker, result in zip(jobs, markers, results, strict=True):
            passed = {line.split()[1] for line in result.stdout.splitlines() if line.startswith(marker + " ")}
            rewards[i] = len(passed & {str(k) for k in range(len(all_tests[i] or []))}) / len(all_tests[i] or [1])
        return rewards
