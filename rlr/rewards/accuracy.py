"""Correctness rewards: thin TRL-contract wrappers around `rlr.rewards.correctness`.

All rewards are callable classes rather than closures so that they pickle: TRL's async GRPO rollout worker
and `datasets.map(num_proc>1)` send reward functions to other processes, and closures cannot be pickled.
The ground truth comes from the `answer` column; a row whose verifier kind needs one (math, exact, numeric:
`VerifierKind.needs_answer`) without one, or with one that cannot be parsed (status "gold_unparseable"), scores
None (TRL skips it): paying 0 would punish the policy for a broken row, paying 1 would be a reward hack.
Procedural and gym rows go to their verifier, which may need only `meta`.
"""

from __future__ import annotations

from typing import Any

from rlr.rewards.base import Reward
from rlr.rewards.common import column, completion_texts
from rlr.rewards.correctness import score_correctness_detailed
from rlr.rewards.math_extract import MathSettings
from rlr.rewards.verifiers import verifier_kind

_SETTING_ARGS = ("precision", "strict", "allow_set_relation_comp")


class _Correctness(Reward):
    measures_correctness = True
    forced_task: str | None = None  # None: dispatch on the row's `task` column

    def __init__(self, timeout_s: float | None = None, precision: int = 6, strict: bool = True,
                 allow_set_relation_comp: bool = False) -> None:
        super().__init__()
        self.timeout_s = timeout_s  # per-item hard timeout for math-verify; None: the pool's default (5 s)
        # math-verify's knobs (its defaults): see `MathSettings`, which checks them now (a bad one is a bad arg)
        MathSettings(precision, strict, allow_set_relation_comp)
        self.precision, self.strict, self.allow_set_relation_comp = precision, strict, allow_set_relation_comp

    @property
    def settings(self) -> MathSettings:
        return MathSettings(self.precision, self.strict, self.allow_set_relation_comp)

    def __call__(self, completions: list[Any], **kwargs: Any) -> list[float | None]:
        texts = completion_texts(completions)
        n = len(texts)
        tasks = [self.forced_task or t or "math" for t in column(kwargs, "task", n, "math")]
        results = correctness_results(texts, kwargs, tasks, self.timeout_s, self.settings)
        log_metric = kwargs.get("log_metric")  # TRL passes it: silent zeros from timeouts show up in the logs
        statuses = [r[1] for r in results if r is not None]
        if callable(log_metric) and statuses:
            for status in ("timeout", "no_answer", "error", "gold_unparseable"):
                log_metric(f"{self.__name__}/{status}_frac", statuses.count(status) / len(statuses))
        return [None if r is None or r[1] == "gold_unparseable" else r[0] for r in results]


def correctness_results(texts: list[str], kwargs: dict[str, Any], tasks: list[str], timeout_s: float | None = None,
                        settings: MathSettings | None = None) -> list[tuple[float, str] | None]:
    """(score, status) per completion from TRL's kwargs; None where a static task has no ground truth.

    Static tasks need a ground truth; procedural and gym verifiers may score from `meta` alone.
    """
    n = len(texts)
    answers = column(kwargs, "answer", n)
    metas = column(kwargs, "meta", n)
    keep = [i for i in range(n) if not verifier_kind(tasks[i]).needs_answer or str(answers[i] or "").strip()]
    results = score_correctness_detailed(
        [texts[i] for i in keep],
        ["" if answers[i] is None else str(answers[i]) for i in keep],
        [tasks[i] for i in keep],
        [metas[i] for i in keep],
        timeout_s=timeout_s,
        settings=settings,
    )
    out: list[tuple[float, str] | None] = [None] * n
    for i, result in zip(keep, results, strict=True):
        out[i] = result
    return out


class MathAccuracy(_Correctness):
    r"""1.0 when the extracted final answer equals the `answer` column under math-verify, else 0.0.

    math-verify reads the final answer (after `</think>`, inside `<answer>`, after `####`: see `math_extract`) and
    handles fractions, LaTeX, sets, intervals, percentages and `x=3` vs `3`. A ground truth it cannot read
    scores None. Args: `precision` (decimal places for floats), `strict` (False: variables need not match),
    `allow_set_relation_comp` (True: a gold set may match an inequality), `timeout_s`.

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

    @classmethod
    def from_reward_specs(cls, specs: Any) -> TaskScore:
        """The scorer `rlr evaluate` uses: math-verify settings from the first preset reward that sets any of them
        (so evaluation reads answers as training rewarded them), else the defaults."""
        for spec in specs or []:
            args = spec.get("args") if isinstance(spec, dict) else getattr(spec, "args", None)
            given = {k: v for k, v in (args or {}).items() if k in _SETTING_ARGS}
            if given:
                return cls(**given)
        return cls()


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
