"""Evaluation metrics over n sampled completions per problem: pass@k, maj@k, avg@n, with bootstrap intervals.

- pass@k is the unbiased estimator of Chen et al. 2021 (Codex), `1 - C(n-c, k) / C(n, k)`, computed as a product
  so that n in the hundreds neither overflows nor loses precision. It uses all n samples, not just the first k.
- maj@k votes over the first k extracted answers as lighteval and open-r1 do: the most frequent answer wins, a
  tie goes to the answer seen first, and an unextracted answer (None) is a vote like any other that cannot be
  correct (`[None, None, None, "4"]` scores 0).
- maj_tie_avg@k is the order-free variant: None never wins, and a tie is scored as the expected accuracy of
  breaking it uniformly at random (the fraction of tied answers that are correct), so a lucky sample order earns
  nothing. It is not comparable with published maj@k numbers; it is steadier between seeds at small k.
- avg@n is the mean score over all n samples (the sampled accuracy).
- Intervals are percentile bootstraps over problems (the unit that varies between benchmark draws), seeded.

Plain Python and numpy: the evaluate stage and tests call these without torch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from rlr.errors import UserError


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n (c correct) is correct."""
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def _normalize(answer: str | None) -> str | None:
    """Whitespace-insensitive key for voting; the extractor has already normalized the math."""
    if answer is None:
        return None
    key = " ".join(str(answer).split())
    return key or None


def _check_votes(answers: Sequence[str | None], correct_flags: Sequence[bool | float], k: int, name: str) -> None:
    if len(answers) != len(correct_flags):
        raise ValueError(f"{name}: {len(answers)} answers but {len(correct_flags)} correctness flags")
    if not 1 <= k <= len(answers):
        raise ValueError(f"{name} needs 1 <= k <= {len(answers)} (the number of samples), got k={k}")


def maj_at_k(answers: Sequence[str | None], correct_flags: Sequence[bool | float], k: int) -> float:
    """Correctness of the majority answer among the first k samples, as lighteval and open-r1 score it.

    Most frequent extracted answer; a tie goes to the answer seen first; None (nothing extracted) is a vote that
    cannot be correct. The winner's correctness is that of its first sample (the verifier's verdict on it).
    """
    _check_votes(answers, correct_flags, k, "maj_at_k")
    counts: dict[str | None, int] = {}
    first_flag: dict[str | None, float] = {}
    for answer, flag in zip(answers[:k], correct_flags[:k], strict=True):
        key = _normalize(answer)
        counts[key] = counts.get(key, 0) + 1
        first_flag.setdefault(key, float(flag))
    winner = max(counts, key=lambda key: counts[key])  # dicts keep first-seen order: max keeps the first of a tie
    return 0.0 if winner is None else first_flag[winner]


def maj_tie_avg_at_k(answers: Sequence[str | None], correct_flags: Sequence[bool | float], k: int) -> float:
    """Accuracy of the majority answer among the first k samples; ties scored as a uniformly random pick.

    An answer's correctness is the mean of its samples' flags (identical answers should agree; if a verifier
    scores them differently we average rather than trust whichever came first). None never wins; 0.0 when no
    answer was extracted.
    """
    _check_votes(answers, correct_flags, k, "maj_tie_avg_at_k")
    votes: dict[str, list[float]] = {}
    for answer, flag in zip(answers[:k], correct_flags[:k], strict=True):
        key = _normalize(answer)
        if key is not None:
            votes.setdefault(key, []).append(float(flag))
    if not votes:
        return 0.0
    top = max(len(flags) for flags in votes.values())
    tied = [flags for flags in votes.values() if len(flags) == top]
    return sum(sum(flags) / len(flags) for flags in tied) / len(tied)


def avg_at_n(correct_flags: Sequence[bool | float]) -> float:
    """Mean score over all samples of one problem (or of any list)."""
    if not correct_flags:
        raise ValueError("avg_at_n needs at least one sample")
    return sum(float(x) for x in correct_flags) / len(correct_flags)


def bootstrap_ci(
    per_problem_values: Sequence[float], n_resamples: int = 1000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) interval of the mean, resampling problems with replacement."""
    values = np.asarray(per_problem_values, dtype=float)
    if values.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if not 0 < alpha < 1 or n_resamples < 1:
        raise ValueError(f"bootstrap_ci needs 0 < alpha < 1 and n_resamples >= 1, got {alpha}, {n_resamples}")
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    chunk = max(1, 2_000_000 // values.size)  # bound memory at ~16 MB of indices whatever the benchmark size
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        idx = rng.integers(0, values.size, size=(stop - start, values.size))
        means[start:stop] = values[idx].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


@dataclasses.dataclass
class ProblemSamples:
    """Everything the evaluate stage recorded for the n samples of one problem (lists are per sample)."""

    answers: list[str | None]
    """extracted, normalized answers (None: nothing extracted)"""
    correct: list[bool]
    """verifier verdicts (score == 1)"""
    lengths: list[int] = dataclasses.field(default_factory=list)
    """completion lengths in tokens"""
    truncated: list[bool] = dataclasses.field(default_factory=list)
    """hit max_new_tokens before end of sequence"""
    format_ok: list[bool] = dataclasses.field(default_factory=list)
    """followed the requested answer format"""
    scores: list[float] | None = None
    """verifier scores in [0, 1] when they can be partial (reasoning-gym); defaults to `correct`"""
    task: str = "default"
    """benchmark or task name, for the per-task breakdown"""

    def __post_init__(self) -> None:
        n = len(self.correct)
        if len(self.answers) != n:
            raise ValueError(f"ProblemSamples({self.task}): {len(self.answers)} answers for {n} samples")
        for name in ("lengths", "truncated", "format_ok", "scores"):
            value = getattr(self, name)
            if value and len(value) != n:
                raise ValueError(f"ProblemSamples({self.task}): {len(value)} {name} for {n} samples")


def _metric(values: list[float], n_resamples: int, seed: int) -> tuple[float, list[float]]:
    lo, hi = bootstrap_ci(values, n_resamples=n_resamples, seed=seed)
    return sum(values) / len(values), [lo, hi]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _summarize(problems: list[ProblemSamples], ks: list[int], n_resamples: int, seed: int) -> dict:
    out: dict = {"num_problems": len(problems), "samples_per_problem": min(len(p.correct) for p in problems)}
    per_problem: dict[str, list[float]] = {}
    for k in ks:
        per_problem[f"pass@{k}"] = [pass_at_k(len(p.correct), sum(map(bool, p.correct)), k) for p in problems]
        per_problem[f"maj@{k}"] = [maj_at_k(p.answers, p.correct, k) for p in problems]
        per_problem[f"maj_tie_avg@{k}"] = [maj_tie_avg_at_k(p.answers, p.correct, k) for p in problems]
    per_problem["avg@n"] = [avg_at_n(p.correct) for p in problems]
    if any(p.scores for p in problems):
        per_problem["mean_score"] = [avg_at_n(p.scores or p.correct) for p in problems]
    for name, values in per_problem.items():
        out[name], out[f"{name}_ci"] = _metric(values, n_resamples, seed)
    lengths = [x for p in problems for x in p.lengths]
    out["mean_length"] = _mean([float(x) for x in lengths])
    out["max_length"] = max(lengths) if lengths else None
    out["truncation_rate"] = _mean([float(x) for p in problems for x in p.truncated])
    out["format_compliance"] = _mean([float(x) for p in problems for x in p.format_ok])
    return out


def summarize(problems: list[ProblemSamples], ks: list[int], n_resamples: int = 1000, seed: int = 0) -> dict:
    """Flat metrics dict (`pass@1`, `pass@1_ci`, `maj@8`, `avg@n`, `mean_length`, ...) plus `per_task`.

    Flat keys keep CI gates simple (`--min pass@1=0.5`); `*_ci` are [low, high] 95% bootstrap intervals over
    problems. Length, truncation and format statistics are over all samples; None when nothing was recorded.
    """
    if not problems:
        raise ValueError("summarize needs at least one problem")
    n_min = min(len(p.correct) for p in problems)
    too_big = [k for k in ks if k > n_min]
    if too_big or any(k < 1 for k in ks):
        raise UserError(
            f"eval.k {ks} needs 1 <= k <= samples per problem ({n_min}); raise eval.samples to {max(ks)} or lower k"
        )
    out = _summarize(problems, ks, n_resamples, seed)
    by_task: dict[str, list[ProblemSamples]] = {}
    for p in problems:
        by_task.setdefault(p.task, []).append(p)
    out["per_task"] = {task: _summarize(group, ks, n_resamples, seed) for task, group in sorted(by_task.items())}
    return out
