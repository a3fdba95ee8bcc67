"""The verifier-kind registry (`rlr.rewards.verifiers`): each kind declared once, and a kind added there alone is
scored, skipped without an answer, audited and warned about by the modules that ask its traits."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from rlr.errors import UserError
from rlr.rewards.accuracy import TaskScore
from rlr.rewards.correctness import score_correctness_detailed
from rlr.rewards.doctor import check_rewards
from rlr.rewards.gold_check import is_code_row, reference_completion
from rlr.rewards.verifiers import KINDS, VerifierKind, verifier_kind
from rlr.tasks import get_task


@pytest.mark.parametrize(("name", "needs_answer", "judges_code"), [
    ("math", True, False), ("exact", True, False), ("numeric", True, False),
    ("code", False, True), ("humaneval", False, True),
])
def test_each_static_kind_is_declared_with_its_traits(name: str, needs_answer: bool, judges_code: bool) -> None:
    kind = KINDS[name]
    assert (kind.name, kind.needs_answer, kind.judges_code) == (name, needs_answer, judges_code)


def test_blank_is_math_and_any_other_name_is_a_procedural_tasks_verifier() -> None:
    assert set(KINDS) == {"math", "exact", "numeric", "code", "humaneval"}
    assert verifier_kind(None) is KINDS["math"] and verifier_kind("") is KINDS["math"]
    countdown = verifier_kind("countdown")
    assert (countdown.name, countdown.needs_answer, countdown.judges_code) == ("countdown", False, False)
    row = get_task("countdown").generate(1, seed=0)[0]
    assert score_correctness_detailed([row["solution"]], [str(row["answer"])], ["countdown"],
                                      [row.get("meta")]) == [(1.0, "ok")]


def test_an_unknown_task_is_an_error_when_scored_not_when_its_traits_are_read() -> None:
    assert not verifier_kind("nope").needs_answer  # the gold check and the doctor only read traits
    with pytest.raises(UserError, match=r"unknown task 'nope' \(valid: arithmetic, countdown, pyfunc, gym:<name>\)"):
        score_correctness_detailed(["1", "2"], ["1", "2"], ["numeric", "nope"])


def _last_word(completions: Sequence[str], answers: Sequence[str], metas: Sequence[str | dict | None],
               timeout_s: float | None, settings: object) -> list[tuple[float, str]]:
    return [(float(c.split()[-1].lower() == a.lower()), "ok") for c, a in zip(completions, answers, strict=True)]


@pytest.fixture
def last_word(monkeypatch: pytest.MonkeyPatch) -> VerifierKind:
    kind = VerifierKind("last_word", _last_word, needs_answer=True)
    monkeypatch.setitem(KINDS, kind.name, kind)
    return kind


def test_a_kind_registered_alone_is_scored_beside_the_others(last_word: VerifierKind) -> None:
    results = score_correctness_detailed(["I say yes", "so 7", "I say no"], ["yes", "7", "yes"],
                                         ["last_word", "numeric", "last_word"])
    assert results == [(1.0, "ok"), (1.0, "ok"), (0.0, "ok")]


def test_a_registered_kinds_traits_reach_the_rewards_gold_check_and_doctor(last_word: VerifierKind,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # needs_answer: a blank answer is unscorable (None), not 0
    assert TaskScore()(["I say yes", "I say yes"], answer=["yes", " "], task=["last_word"] * 2) == [1.0, None]
    # needs_answer: the gold check writes the answer as the reference, not the row's solution
    row = {"answer": "yes", "task": "last_word", "solution": "a worked solution"}
    assert reference_completion(row, "answer_tag", thinks=False) == "<answer>yes</answer>"
    assert not is_code_row(row)
    # needs_answer: the doctor warns about completions with no final answer to compare
    rows = [{"prompt": "?", "answer": "yes", "solution": None, "task": "last_word", "meta": "{}"}]
    assert any("no final answer found in 1 of 1" in w for w in check_rewards(rows, [["<think>hmm"]], [], []).warnings)

    monkeypatch.setitem(KINDS, "last_word", VerifierKind("last_word", _last_word, judges_code=True))
    assert is_code_row(row) and reference_completion(row, "boxed", thinks=False) == (
        "```python\na worked solution\n```")
    assert TaskScore()(["I say yes"], answer=[" "], task=["last_word"]) == [0.0]  # scored: no answer needed
    assert not any("no final answer" in w for w in check_rewards(rows, [["<think>hmm"]], [], []).warnings)
