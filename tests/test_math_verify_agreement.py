"""rlr's definition of a correct math answer agrees with Math-Verify, and pays no wrong answer.

`data/math_verify/cases.jsonl` is Math-Verify's own test suite as data (Apache-2.0, huggingface/Math-Verify; see
its README). Each case goes through the real reward object training uses (`MathAccuracy`, in the worker pool),
with the gold as the `answer` column and the prediction as the completion.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlr.rewards.accuracy import MathAccuracy, TaskScore
from rlr.rewards.correctness import unparseable_gold
from rlr.rewards.length import Cosine, LengthPenalty
from rlr.rewards.math_extract import math_candidates
from rlr.rewards.registry import build_reward

DATA = Path(__file__).parent / "data"
_KNOBS = ("precision", "strict", "allow_set_relation_comp")
_DEFAULT_KNOBS = (6, True, False)


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _scores(cases: list[dict], completion: str, answer: str, **args) -> list[float | None]:
    return MathAccuracy(**args)([c[completion] for c in cases], answer=[c[answer] for c in cases])


def test_agrees_with_math_verify_test_suite() -> None:
    cases = _read(DATA / "math_verify" / "cases.jsonl")
    assert len(cases) == 269
    by_knobs: dict[tuple, list[dict]] = {}
    for case in cases:
        by_knobs.setdefault(tuple(case[k] for k in _KNOBS), []).append(case)
    agree: dict[tuple, list[bool]] = {}
    misses = []
    for knobs, group in by_knobs.items():
        scores = _scores(group, "pred", "gold", **dict(zip(_KNOBS, knobs, strict=True)))
        agree[knobs] = [score == case["expected"] for score, case in zip(scores, group, strict=True)]
        misses += [(c["source"], c["gold"], c["pred"], c["expected"])
                   for c, ok in zip(group, agree[knobs], strict=True) if not ok]
    overall = sum(sum(flags) for flags in agree.values()) / len(cases)
    defaults = agree[_DEFAULT_KNOBS]
    # Measured 267/269 (99.3%) overall and 259/261 at the default knobs: the two misses are test_latex_notation
    # cases run with LaTeX extraction only (`Answer $ \n 9 \n $`); with its default extractors math-verify also reads
    # the 9 there, as rlr does.
    assert overall >= 0.99, f"agreement {overall:.3f}; disagreements: {misses}"
    assert sum(defaults) / len(defaults) >= 0.99, misses
    assert len(defaults) == 261


def test_knobs_are_reward_args_and_change_the_verdict() -> None:
    strict, loose = build_reward("math_accuracy", {}), build_reward("math_accuracy", {"strict": False})
    assert strict(["$f(y)$"], answer=["$f(x)$"]) == [0.0]
    assert loose(["$f(y)$"], answer=["$f(x)$"]) == [1.0]
    interval = [r"$(0.6,2.6667]$"], [r"$(\frac{3}{5},\frac{8}{3}]$"]
    assert MathAccuracy()(interval[0], answer=interval[1]) == [0.0]
    assert MathAccuracy(precision=2)(interval[0], answer=interval[1]) == [1.0]
    relation = [r"$-2 \le x \le 7$"], [r"$x \in [-2,7]$"]
    assert MathAccuracy()(relation[0], answer=relation[1]) == [0.0]
    assert MathAccuracy(allow_set_relation_comp=True)(relation[0], answer=relation[1]) == [1.0]
    assert Cosine(max_len=10, strict=False)(["$f(y)$"], answer=["$f(x)$"], completion_ids=[[0] * 5]) == [0.75]


def test_bad_knob_values_are_refused_when_the_reward_is_built() -> None:
    from rlr.errors import UserError
    from rlr.rewards.registry import validate_reward_specs

    with pytest.raises(UserError, match="precision must be a whole number"):
        build_reward("math_accuracy", {"precision": "6"})
    problems = validate_reward_specs([{"name": "cosine", "args": {"strict": "no"}}])
    assert problems and problems[0].startswith("rewards[0].args") and "strict must be true or false" in problems[0]


def test_no_wrong_answer_scores_correct_on_the_adversarial_set() -> None:
    """A false positive is a reward hack: leading coefficients, tuples, partial LaTeX, units, powers, factorials and
    prose with several numbers must all score 0 (and none of them may be skipped as an unreadable gold)."""
    rows = _read(DATA / "math_adversarial.jsonl")
    wrong = [r for r in rows if r["expected"] == 0]
    right = [r for r in rows if r["expected"] == 1]
    assert len(wrong) >= 80 and {r["kind"] for r in wrong} >= {"leading coefficient", "tuple or interval",
                                                                "partial LaTeX", "units", "power", "factorial",
                                                                "prose with several numbers"}  # fmt: skip
    scores = _scores(wrong, "completion", "answer")
    paid = [(r["completion"], r["answer"], s) for r, s in zip(wrong, scores, strict=True) if s != 0.0]
    assert not paid, f"wrong answers scored correct (or skipped): {paid}"
    # and the formats the extractor must read: ####, Minerva, several \boxed{}, LaTeX after </think>, <answer>
    scores = _scores(right, "completion", "answer")
    missed = [(r["completion"], r["answer"], s) for r, s in zip(right, scores, strict=True) if s != 1.0]
    assert not missed, f"right answers scored wrong: {missed}"


def test_the_issue_examples() -> None:
    m = MathAccuracy()
    assert m([r"\boxed{4\sqrt{2}}", r"\boxed{2\pi}", r"\boxed{7!}", r"\boxed{10^{5}}", r"\boxed{3x}"],
             answer=["4", "2", "7", "10", "3"]) == [0.0] * 5  # fmt: skip
    assert m(["So the point is $(3,2)$.", "The range is $[0,1)$"], answer=["32", "1"]) == [0.0, 0.0]
    assert m([r"The ratio is $\frac{1+\sqrt{5}}{2}$"], answer=["2"]) == [0.0]
    assert m([r"So $x = \frac{1}{3}$", "#### 12\nI used 3 steps.", "$E$", "$odd$"],
             answer=[r"\frac{1}{3}", "12", "E", "odd"]) == [1.0] * 4  # fmt: skip


def test_unparseable_gold_is_none_in_every_correctness_reward() -> None:
    """TRL skips None: paying 0 punishes the policy for a broken row, paying 1 (open-r1 PR #566) is a hack."""
    completions = [r"\boxed{3}", r"\boxed{3}", r"\boxed{3}"]
    answers = ["see the figure above", "3", None]
    assert MathAccuracy()(completions, answer=answers) == [None, 1.0, None]
    assert TaskScore()(completions, answer=answers, task=["math"] * 3) == [None, 1.0, None]
    assert build_reward("accuracy")(completions, answer=answers) == [None, 1.0, None]
    assert Cosine(max_len=10)(completions, answer=answers, completion_ids=[[0] * 5] * 3) == [None, 0.75, None]
    assert LengthPenalty()(completions, answer=answers, prompts=["q"] * 3) == [None, 0.0, None]
    assert unparseable_gold(["see the figure above", "3", r"\frac{1}{2}", "odd"]) == [0]


@pytest.mark.parametrize(
    ("completion", "answer"),
    [
        ("The answer is 2\\sqrt{2}", "2"),  # the plain-number reader alone would stop at the backslash
        ("so 7! arrangements", "7"),
        ("we get 12 \\pi", "12"),
        ("The answer is 1.5e3", "1.5"),
        ("The coordinates are 12,5", "125"),
        ("#### 3,4", "34"),
    ],
)
def test_fallback_never_cuts_latex_or_merges_numbers(completion: str, answer: str) -> None:
    assert MathAccuracy()([completion], answer=[answer]) == [0.0]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("\\boxed{}()[]<>/thinkanswr#^_!$ ,.0123456789xe")), max_size=300))
def test_region_and_wrapping_never_raise(text: str) -> None:
    candidates = math_candidates(text)
    assert all(isinstance(c, str) for c in candidates)


def test_region_and_wrapping_are_linear_on_hostile_input() -> None:
    start = time.monotonic()
    for text in ("x" * 200_000 + r" \boxed{1}", "{" * 200_000, "1 " * 100_000, "x^2 " * 50_000, "$" * 100_000,
                 "</think>" * 20_000 + "####" * 20_000, "a_b " * 50_000 + "7!" * 10_000):
        math_candidates(text)
    # Linear takes well under a second for these ~1.4M characters; a quadratic scan takes hours. This runs in the
    # worker before math-verify, under the pool's timeout, but should not eat it.
    assert time.monotonic() - start < 10.0
