"""THE definition of a correct answer, shared by training rewards and `rlr evaluate`.

`score_correctness` dispatches on each row's `task`:
- "math": math-verify reads the final answer and the ground truth (`rlr.rewards.math_extract` chooses what
  it reads) and compares them, in worker processes with a hard per-item timeout (`rlr.rewards.math_pool`);
  a timeout or parser error scores 0 and is counted. A ground truth math-verify cannot read has status
  "gold_unparseable": the row cannot be scored (the rewards give None, evaluate counts it apart).
- "exact": normalized string equality of the extracted answer (case, spaces, `$`, trailing period).
- "numeric": numeric equality of the extracted answer (relative tolerance 1e-6; `1,000` and `50%` read).
- "humaneval": the HumanEval problem named by meta `task_id`, its own `check` run in the sandbox (judged:
  see `rlr.sandbox.judge`);
- anything else (procedural tasks such as "countdown", "gym:<name>"): the task's own verifier from
  `rlr.tasks.get_verifier`, which may give partial credit in [0, 1]; it raises `UserError` for unknown names.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections import Counter
from collections.abc import Sequence

from rlr.errors import UserError
from rlr.rewards.extract import extract_answer
from rlr.rewards.math_extract import MathSettings
from rlr.rewards.math_pool import default_pool

logger = logging.getLogger(__name__)
_stats: Counter[str] = Counter()
_stats_lock = threading.Lock()


def correctness_stats() -> dict[str, int]:
    """Counters since start (or the last reset): items, correct, no_answer, timeout, error (per status)."""
    with _stats_lock:
        return dict(_stats)


def reset_correctness_stats() -> None:
    with _stats_lock:
        _stats.clear()


def _count(results: Sequence[tuple[float, str]]) -> None:
    with _stats_lock:
        _stats["items"] += len(results)
        _stats["correct"] += sum(1 for score, _ in results if score >= 1.0)
        _stats.update(status for _, status in results)


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


def _exact(completion: str, answer: str) -> tuple[float, str]:
    predicted = extract_answer(completion)
    if predicted is None:
        return 0.0, "no_answer"
    return float(normalize_text(predicted) == normalize_text(answer)), "ok"


def _numeric(completion: str, answer: str) -> tuple[float, str]:
    predicted = extract_answer(completion)
    if predicted is None:
        return 0.0, "no_answer"
    got, want = parse_number(predicted), parse_number(answer)
    if want is None:
        return 0.0, "gold_unparseable"
    if got is None:
        return 0.0, "ok"
    return float(math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9)), "ok"


def _task_verifier(task: str, completion: str, answer: str, meta: dict) -> tuple[float, str]:
    from rlr.tasks import get_verifier  # lazy: tasks may pull optional deps (reasoning-gym)

    verifier = get_verifier(task)  # UserError for unknown task names propagates: that is a config problem
    try:
        score = float(verifier(completion, answer, meta))
    except UserError:
        raise
    except Exception:
        logger.debug("verifier for task %r raised", task, exc_info=True)
        return 0.0, "error"
    if not math.isfinite(score):
        return 0.0, "error"
    return min(1.0, max(0.0, score)), "ok"


def score_correctness_detailed(
    completions: Sequence[str],
    answers: Sequence[str],
    tasks: Sequence[str] | None = None,
    metas: Sequence[str | dict | None] | None = None,
    timeout_s: float | None = None,
    settings: MathSettings | None = None,
) -> list[tuple[float, str]]:
    """(score, status) per completion; status is ok, no_answer, gold_unparseable, timeout or error (score 0 for all
    but ok). `settings` are math-verify's knobs for "math" rows. See `score_correctness`."""
    n = len(completions)
    if len(answers) != n:
        raise ValueError(f"{n} completions but {len(answers)} answers")
    tasks = list(tasks) if tasks is not None else ["math"] * n
    metas = list(metas) if metas is not None else [None] * n
    results: list[tuple[float, str]] = [(0.0, "error")] * n
    math_idx = [i for i in range(n) if (tasks[i] or "math") == "math"]
    if math_idx:
        scored = default_pool().score([(completions[i], str(answers[i])) for i in math_idx], timeout_s, settings)
        for i, result in zip(math_idx, scored, strict=True):
            results[i] = result
    tests_idx = [i for i in range(n) if tasks[i] == "code"]
    if tests_idx:
        for i, result in zip(tests_idx, _code_tests([completions[i] for i in tests_idx],
                                                    [metas[i] for i in tests_idx]), strict=True):
            results[i] = result
    code_idx = [i for i in range(n) if tasks[i] == "humaneval"]
    if code_idx:
        for i, result in zip(code_idx, _humaneval([completions[i] for i in code_idx],
                                                  [metas[i] for i in code_idx]), strict=True):
            results[i] = result
    for i in range(n):
        task = tasks[i] or "math"
        if task in ("humaneval", "code"):
            continue
        if task == "exact":
            results[i] = _exact(completions[i], str(answers[i]))
        elif task == "numeric":
            results[i] = _numeric(completions[i], str(answers[i]))
        elif task != "math":
            results[i] = _task_verifier(task, completions[i], str(answers[i]), parse_meta(metas[i]))
    _count(results)
    timeouts = sum(1 for _, status in results if status == "timeout")
    if timeouts:
        logger.warning("math-verify timed out on %d of %d answers; they score 0", timeouts, n)
    return results


def unparseable_gold(answers: Sequence[str | None], timeout_s: float | None = None) -> list[int]:
    """Indexes of the math ground truths that math-verify cannot read (or whose reading times out): rows that every
    correctness reward will skip (None). One parse per distinct answer, in the worker pool."""
    pairs = [("", "" if a is None else str(a)) for a in answers]
    results = default_pool().score(pairs, timeout_s) if pairs else []
    return [i for i, (_, status) in enumerate(results) if status in ("gold_unparseable", "timeout", "error")]


def _code_tests(completions: Sequence[str], metas: Sequence[str | dict | None]) -> list[tuple[float, str]]:
    """`code` rows (tests in meta, from a source's `tests:` column): `code_tests`'s verdict, judged in the sandbox.
    A row without tests has nothing to check its answer against: "gold_unparseable", as an unreadable answer."""
    from rlr.rewards.code import CodeTests

    scores = CodeTests()(list(completions), meta=list(metas))
    return [(0.0, "gold_unparseable") if s is None else (float(s), "ok") for s in scores]


def _humaneval(completions: Sequence[str], metas: Sequence[str | dict | None]) -> list[tuple[float, str]]:
    """HumanEval rows (meta `{"task_id": ...}`): the problem's own check, judged in the sandbox."""
    from rlr.evaluate.humaneval import judge, problems_by_id

    by_id = problems_by_id()
    ids = [str(parse_meta(m).get("task_id")) for m in metas]
    unknown = sorted({t for t in ids if t not in by_id})
    if unknown:
        raise UserError(f"humaneval: unknown task_id {unknown[0]}; rows of task humaneval need meta "
                        '{"task_id": "HumanEval/0"} ... "HumanEval/163"')
    passed = judge([by_id[t] for t in ids], list(completions))
    return [(1.0 if ok else 0.0, "ok") for ok in passed]


def score_correctness(
    completions: Sequence[str],
    answers: Sequence[str],
    tasks: Sequence[str] | None = None,
    metas: Sequence[str | dict | None] | None = None,
    timeout_s: float | None = None,
    settings: MathSettings | None = None,
) -> list[float]:
    """1.0 correct / 0.0 wrong per completion (procedural and gym tasks may give partial credit in [0, 1]).
    An unparseable ground truth scores 0 here; use `score_correctness_detailed` to tell it apart.

    >>> score_correctness([r"\\boxed{\\frac{1}{2}}", "<think>..</think> 7"], ["0.5", "8"], ["math", "numeric"])
    [1.0, 0.0]
    """
    return [score for score, _ in score_correctness_detailed(completions, answers, tasks, metas, timeout_s, settings)]


def is_correct(completion: str, answer: str, task: str = "math", meta: str | dict | None = None) -> bool:
    """Single-item form of `score_correctness` (partial credit counts as correct only when it is 1.0)."""
    return score_correctness([completion], [answer], [task], [meta])[0] >= 1.0
