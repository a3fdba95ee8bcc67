"""`code_tests`: run the completion's last Python block against the row's tests, in the sandbox.

The verdict does not live where the code runs: `rlr.sandbox.judge` runs the code in one sandbox and the tests
(assert statements) in another, which asks the first one for values as plain data and compares them itself.
The tests never enter the code's process, and nothing the code prints, patches or exits with decides
anything. A crash, timeout or `sys.exit` scores the tests it cut off as 0; so does a reward that fails
internally (logged), which never stops training. Tests come from a `tests` column (list or JSON list) or from
`meta` JSON `{"tests": [...]}`; a row without tests scores None (TRL skips it).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from rlr.rewards.base import Reward
from rlr.rewards.common import column, completion_texts
from rlr.rewards.verifiers import parse_meta
from rlr.sandbox import JudgedJob, run_judged_many

log = logging.getLogger(__name__)

_FENCE = re.compile(r"```(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)

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

    def __init__(self, timeout_s: float = 5.0, memory_mb: int = 512, workers: int = 2,
                 test_timeout_s: float | None = None) -> None:
        super().__init__()
        if test_timeout_s is not None and (isinstance(test_timeout_s, bool)
                                           or not isinstance(test_timeout_s, (int, float)) or not 0 < test_timeout_s):
            raise ValueError(f"test_timeout_s must be a number > 0 (seconds per test), or null for no per-test "
                             f"limit; got {test_timeout_s!r}")
        self.timeout_s, self.memory_mb, self.workers = timeout_s, memory_mb, workers
        # each test case's own limit: one slow or hung case fails alone instead of using up timeout_s, the
        # limit of the whole run, and taking the tests after it down too
        self.test_timeout_s = test_timeout_s

    def __call__(self, completions: list[Any], **kwargs: Any) -> list[float | None]:
        texts = completion_texts(completions)
        n = len(texts)
        all_tests = [
            row_tests(t, m) for t, m in zip(column(kwargs, "tests", n), column(kwargs, "meta", n), strict=True)
        ]
        rewards: list[float | None] = [None if t is None else 0.0 for t in all_tests]
        # One verdict per distinct (program, tests) in the call: a group of GRPO samples is often the same text
        # (a small model's, nearly always), and a verdict costs two sandboxes.
        jobs: list[JudgedJob] = []
        slot: dict[tuple[str, tuple[str, ...]], int] = {}
        owners: list[tuple[int, int]] = []  # (completion index, job index)
        for i, (text, tests) in enumerate(zip(texts, all_tests, strict=True)):
            code = extract_code(text)
            if tests is None or code is None:
                continue
            key = (code, tuple(tests))
            if key not in slot:
                slot[key] = len(jobs)
                jobs.append(JudgedJob(program=code, tests=tests, test_timeout_s=self.test_timeout_s))
            owners.append((i, slot[key]))
        try:
            results = run_judged_many(jobs, workers=self.workers, timeout_s=self.timeout_s, memory_mb=self.memory_mb)
        except Exception:  # noqa: BLE001 - a reward that breaks scores 0; it must never stop training
            log.exception("code_tests: the sandbox failed; these completions score 0")
            results = [None] * len(jobs)
        for i, j in owners:
            result = results[j]
            rewards[i] = result.fraction if result is not None else 0.0
        return rewards
