"""Metrics against hand-computed values: pass@k edge cases, maj@k ties, bootstrap intervals, summarize."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlr.errors import UserError
from rlr.evaluate.metrics import (
    ProblemSamples,
    avg_at_n,
    bootstrap_ci,
    maj_at_k,
    maj_tie_avg_at_k,
    pass_at_k,
    summarize,
)


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 1, 0.4),  # c / n
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
        (4, 0, 4, 0.0),  # n = k, none correct
        (4, 1, 4, 1.0),  # n = k, one correct: the k samples are all samples
        (8, 0, 1, 0.0),
        (8, 8, 1, 1.0),
        (8, 6, 3, 1.0),  # fewer than k wrong samples: any k contain a correct one
    ],
)
def test_pass_at_k_hand_computed(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


@given(n=st.integers(1, 60), data=st.data())
def test_pass_at_k_matches_the_combinatorial_definition(n: int, data: st.DataObject) -> None:
    c = data.draw(st.integers(0, n))
    k = data.draw(st.integers(1, n))
    assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k), abs=1e-9)


def test_pass_at_k_is_stable_for_large_n() -> None:
    assert 0.0 < pass_at_k(2000, 1, 1) == pytest.approx(1 / 2000)
    assert pass_at_k(2000, 1000, 100) == pytest.approx(1.0)


@pytest.mark.parametrize(("n", "c", "k"), [(3, 1, 4), (3, 1, 0), (3, 4, 1), (3, -1, 1)])
def test_pass_at_k_rejects_bad_arguments(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


@pytest.mark.parametrize(
    ("answers", "flags", "k", "expected"),
    [
        (["1", "1", "2"], [True, True, False], 3, 1.0),
        (["2", "1", "1"], [False, True, True], 3, 1.0),
        (["2", "1", "1"], [False, True, True], 1, 0.0),  # only the first k vote
        (["1", "2"], [True, False], 2, 0.5),  # tie: half of the tied answers are correct
        (["2", "1", "1", "2"], [False, True, True, False], 4, 0.5),
        (["2", "3", "1"], [False, False, True], 3, 1 / 3),  # three-way tie
        (["1", "1", "2", "2", "3"], [True, True, False, False, False], 5, 0.5),  # "3" is not in the tie
        ([None, None, "3"], [False, False, True], 3, 1.0),  # None never wins
        ([None, None], [False, False], 2, 0.0),
        (["3 ", " 3", "4"], [True, True, False], 3, 1.0),  # whitespace does not split votes
    ],
)
def test_maj_tie_avg_at_k(answers: list, flags: list[bool], k: int, expected: float) -> None:
    assert maj_tie_avg_at_k(answers, flags, k) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("answers", "flags", "k", "expected"),
    [
        ([None, None, None, "4"], [False, False, False, True], 4, 0.0),  # lighteval: the unextracted vote wins
        (["1", "1", "2"], [True, True, False], 3, 1.0),
        (["2", "1", "1"], [False, True, True], 1, 0.0),  # only the first k vote
        (["1", "2"], [True, False], 2, 1.0),  # tie: the answer seen first
        (["2", "1"], [False, True], 2, 0.0),
        (["2", "1", "1", "2"], [False, True, True, False], 4, 0.0),
        ([None, "3", "3"], [False, True, True], 3, 1.0),
        ([None, "3"], [False, True], 2, 0.0),  # a tie with None: None was first
        (["3 ", " 3", "4"], [True, True, False], 3, 1.0),  # whitespace does not split votes
    ],
)
def test_maj_at_k_matches_lighteval(answers: list, flags: list[bool], k: int, expected: float) -> None:
    assert maj_at_k(answers, flags, k) == expected


@pytest.mark.parametrize("vote", [maj_at_k, maj_tie_avg_at_k])
def test_maj_at_k_rejects_bad_arguments(vote) -> None:
    with pytest.raises(ValueError, match="k <= 2"):
        vote(["1", "2"], [True, False], 3)
    with pytest.raises(ValueError, match="2 answers but 1"):
        vote(["1", "2"], [True], 1)


def test_avg_at_n() -> None:
    assert avg_at_n([True, False, False, True]) == 0.5
    assert avg_at_n([0.25, 0.75]) == 0.5
    with pytest.raises(ValueError):
        avg_at_n([])


def test_bootstrap_ci() -> None:
    assert bootstrap_ci([0.7] * 20) == pytest.approx((0.7, 0.7))
    values = [1.0] * 500 + [0.0] * 500
    lo, hi = bootstrap_ci(values, seed=3)
    assert (lo, hi) == bootstrap_ci(values, seed=3)
    half_width = 1.96 * math.sqrt(0.25 / 1000)  # normal approximation: +-0.031
    assert lo == pytest.approx(0.5 - half_width, abs=0.01) and hi == pytest.approx(0.5 + half_width, abs=0.01)
    lo99, hi99 = bootstrap_ci(values, seed=3, alpha=0.01)
    assert lo99 < lo < 0.5 < hi < hi99
    with pytest.raises(ValueError):
        bootstrap_ci([])


def _problem(
    answers: list, correct: list[bool], task: str, lengths: list[int], truncated: list[bool]
) -> ProblemSamples:
    return ProblemSamples(answers, correct, lengths, truncated, [a is not None for a in answers], task=task)


def test_summarize_hand_computed() -> None:
    problems = [
        _problem(["4", "4", "5", "4"], [True, True, False, True], "add", [10, 12, 14, 16], [False] * 4),
        _problem(["7", "8", "8", None], [True, False, False, False], "add", [20, 20, 20, 40], [False] * 3 + [True]),
        _problem([None, "1", "2", "2"], [False, False, False, False], "count", [5, 5, 5, 5], [False] * 4),
    ]
    out = summarize(problems, ks=[1, 4], n_resamples=200)
    assert out["num_problems"] == 3 and out["samples_per_problem"] == 4
    assert out["pass@1"] == pytest.approx((0.75 + 0.25 + 0.0) / 3)
    assert out["pass@4"] == pytest.approx(2 / 3)
    assert out["maj@1"] == pytest.approx(2 / 3)  # first answers: right, right, none
    assert out["maj@4"] == pytest.approx(1 / 3)  # "4" wins, "8" wins (wrong), "2" wins (wrong)
    assert out["maj_tie_avg@4"] == pytest.approx(1 / 3)
    assert out["avg@n"] == out["pass@1"]
    lo, hi = out["pass@1_ci"]
    assert 0.0 <= lo <= out["pass@1"] <= hi <= 1.0
    assert out["mean_length"] == pytest.approx(sum([52, 100, 20]) / 12)
    assert out["max_length"] == 40
    assert out["truncation_rate"] == pytest.approx(1 / 12)
    assert out["format_compliance"] == pytest.approx(10 / 12)
    assert "mean_score" not in out
    assert set(out["per_task"]) == {"add", "count"}
    assert out["per_task"]["add"]["pass@4"] == 1.0
    assert out["per_task"]["count"]["pass@1"] == 0.0 and out["per_task"]["count"]["pass@1_ci"] == [0.0, 0.0]


def test_summarize_partial_scores_and_missing_stats() -> None:
    out = summarize([ProblemSamples(["a", "b"], [False, True], scores=[0.5, 1.0])], ks=[2])
    assert out["mean_score"] == 0.75 and out["pass@2"] == 1.0
    assert out["mean_length"] is None and out["truncation_rate"] is None


def test_summarize_refuses_k_above_samples() -> None:
    with pytest.raises(UserError, match="raise eval.samples to 8"):
        summarize([ProblemSamples(["1"] * 4, [True] * 4)], ks=[1, 8])
    with pytest.raises(ValueError, match="2 answers for 3 samples"):
        ProblemSamples(["1", "2"], [True, True, False])
