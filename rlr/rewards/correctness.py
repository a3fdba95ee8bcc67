"""THE definition of a correct answer, shared by training rewards and `rlr evaluate`.

`score_correctness` groups rows by their `task`'s verifier kind (`rlr.rewards.verifiers`: math, exact, numeric,
code, humaneval, or a procedural task's own verifier) and scores each group with that kind's batch scorer.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence

from rlr.rewards.math_extract import MathSettings
from rlr.rewards.math_pool import default_pool
from rlr.rewards.verifiers import KINDS, VerifierKind, normalize_text, parse_meta, parse_number, verifier_kind

__all__ = ["correctness_stats", "is_correct", "normalize_text", "parse_meta", "parse_number",
           "reset_correctness_stats", "score_correctness", "score_correctness_detailed", "unparseable_gold"]

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
    # kind by kind in the order KINDS declares, then procedural tasks in the order first seen
    groups: dict[str, tuple[VerifierKind, list[int]]] = {name: (kind, []) for name, kind in KINDS.items()}
    for i in range(n):
        kind = verifier_kind(tasks[i])
        groups.setdefault(kind.name, (kind, []))[1].append(i)
    results: list[tuple[float, str]] = [(0.0, "error")] * n
    for kind, idx in groups.values():
        if idx:
            scored = kind.score_batch([completions[i] for i in idx], [str(answers[i]) for i in idx],
                                      [metas[i] for i in idx], timeout_s, settings)
            for i, result in zip(idx, scored, strict=True):
                results[i] = result
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
