"""Correctness rewards: thin TRL-contract wrappers around `rlr.rewards.correctness`.

All rewards are callable classes rather than closures so that they pickle: TRL's async GRPO rollout worker
and `datasets.map(num_proc>1)` send reward functions to other processes, and closures cannot be pickled.
The ground truth comes from the `answer` column; a math/exact/numeric row without one scores None (TRL
skips it), while procedural and gym rows go to their verifier, which may need only `meta`.
"""

from __future__ import annotations

from typing import Any

from rlr.rewards.base import Reward
from rlr.rewards.common import column, completion_texts
from rlr.rewards.correctness import score_correctness_detailed

_NEEDS_ANSWER = ("math", "exact", "numeric")


class _Correctness(Reward):
    measures_correctness = True
    forced_task: str | None = None  # None: dispatch on the row's `task` column

    def __init__(self, timeout_s: float | None = None) -> None:
        super().__init__()
        self.timeout_s = timeout_s  # per-item hard timeout for math-verify; None: the pool's default (5 s)

    def __call__(self, completions: list[Any], **kwargs: Any) -> list[float | None]:
        texts = completion_texts(completions)
        n = len(texts)
        answers = column(kwargs, "answer", n)
        tasks = [self.forced_task or t or "math" for t in column(kwargs, "task", n, "math")]
        metas = column(kwargs, "meta", n)
        # Static tasks need a ground truth; procedural and gym verifiers may score from `meta` alone.
        keep = [i for i in range(n) if tasks[i] not in _NEEDS_ANSWER or str(answers[i] or "").strip()]
        results = score_correctness_detailed(
            [texts[i] for i in keep],
            ["" if answers[i] is None else str(answers[i]) for i in keep],
            [tasks[i] for i in keep],
            [metas[i] for i in keep],
            timeout_s=self.timeout_s,
        )
        out: list[float | None] = [None] * n
        for i, (score, _) in zip(keep, results, strict=True):
            out[i] = score
        log_metric = kwargs.get("log_metric")  # TRL passes it: silent zeros from timeouts show up in the logs
        if callable(log_metric) and results:
            statuses = [status for _, status in results]
            for status in ("timeout", "no_answer", "error"):
                log_metric(f"{self.__name__}/{status}_frac", statuses.count(status) / len(statuses))
        return out


class MathAccuracy(_Correctness):
    r"""1.0 when the extracted final answer equals the `answer` column under math-verify, else 0.0.

    The final answer is the last `\boxed{}`, `<answer>`, or text after `</think>` (see `extract_answer`);
    math-verify handles fractions, LaTeX, sets, intervals, percentages and `x=3` vs `3`.

    >>> MathAccuracy()([r"<think>...</think> \boxed{\frac{1}{2}}", r"\boxed{0.6}"], answer=["0.5", "0.5"])
    [1.0, 0.0]
    """

    name = "math_accuracy"
    forced_task = "math"


class TaskScore(_Correctness):
    """Correctness by the row's `task` column: math, exact, numeric, or the task's own verifier.

    Procedural and reasoning-gym rows use their own verifier, which may give partial credit. This is the
    scorer `rlr evaluate` uses too.

    >>> TaskScore()(["<think>6*7</think> 42"], answer=["42"], task=["numeric"])
    [1.0]
    """

    name = "task_score"


class ExactMatch(_Correctness):
    """1.0 when the extracted answer equals `answer` ignoring case, spaces, `$` and a trailing period.

    >>> ExactMatch()(["The answer is Paris."], answer=["paris"])
    [1.0]
    """

    name = "exact_match"
    forced_task = "exact"


class NumericMatch(_Correctness):
    """1.0 when the extracted answer is numerically equal to `answer` (relative tolerance 1e-6).

    >>> NumericMatch()(["so the total is 1,000.0"], answer=["1000"])
    [1.0]
    """

    name = "numeric_match"
    forced_task = "numeric"
