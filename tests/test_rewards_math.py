"""The answer extractor, the one definition of correct, and the math-verify worker pool."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlr.errors import UserError
from rlr.rewards import correctness_stats, extract_answer, is_correct, reset_correctness_stats, score_correctness
from rlr.rewards.accuracy import MathAccuracy, TaskScore
from rlr.rewards.correctness import parse_number, score_correctness_detailed
from rlr.rewards.math_pool import MathVerifyPool


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so \boxed{4}.", "4"),
        (r"first \boxed{3} then \boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"\boxed{\boxed{7}}", "7"),
        (r"<think>maybe \boxed{3}</think> so \boxed{4}", "4"),
        (r"<think>maybe \boxed{3}</think>", None),
        (r"\boxed{\{1, 2\}}", r"\{1, 2\}"),
        (r"\boxed {5} and an unclosed \boxed{6", "5"),
        ("<answer> 12 </answer>", "12"),
        (r"<answer>so \boxed{9}</answer>", "9"),
        ("<think>1+1=2, maybe 3</think> 2", "2"),
        ("<think>x</think>", None),
        ("We find that the answer is 17.", "17"),
        ("The answer is: $x = 3$.", "x = 3"),
        ("3 apples and 1,250 pears", "1250"),
        ("So the point is (3,2).", "(3,2)"),  # never merged into 32, nor cut to 2
        ("The answer is 4\\sqrt{2}", "4\\sqrt{2}"),  # never cut to 4
        ("so there are 7! ways", "7!"),
        ("#### 12\nI used 3 steps.", "12"),
        ("#### 1,000", "1000"),
        ("Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.", "\\frac{1}{2}"),
        ("no digits here", None),
        (r"\boxed{} so 5", "5"),
        ("", None),
    ],
)
def test_extract_answer(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


@settings(max_examples=200, deadline=None)  # speed is checked below, without load flakiness
@given(st.text(alphabet=st.sampled_from(list("\\boxed{}<>/thinkanswr 0123456789.$")), max_size=400))
def test_extract_answer_never_raises(text: str) -> None:
    result = extract_answer(text)
    assert result is None or isinstance(result, str)


def test_extract_answer_is_linear_on_hostile_input() -> None:
    start = time.monotonic()
    extract_answer("\\boxed{" * 20_000 + "<answer>" * 5_000 + "1" * 10_000)
    # Linear takes milliseconds; a quadratic scan of these 150k characters takes minutes. The bound is loose so a
    # loaded CI machine cannot fail it.
    assert time.monotonic() - start < 10.0


@pytest.mark.parametrize(
    ("completion", "answer"),
    [
        (r"\boxed{\frac{63}{400}}", r"\frac{63}{400}"),
        (r"\boxed{0.1575}", r"\frac{63}{400}"),
        (r"\boxed{\frac{1}{2}}", "0.5"),
        (r"\boxed{\dfrac12}", "1/2"),
        (r"\boxed{x=3}", "3"),
        (r"\boxed{3}", "x=3"),
        (r"\boxed{\{2, 1\}}", r"\{1,2\}"),
        (r"\boxed{(1, 2]}", "(1,2]"),
        (r"\boxed{50\%}", "0.5"),
        (r"\boxed{\frac{\sqrt{2}}{2}}", r"\sqrt{2}/2"),
        ("<think>7*6</think> 42", "42"),
        ("The answer is 1,000", "1000"),
        (r"<answer>\boxed{18.0}</answer>", "18"),
        (r"\boxed{\boxed{5}}", "5"),
    ],
)
def test_math_equivalences_are_correct(completion: str, answer: str) -> None:
    assert is_correct(completion, answer)


@pytest.mark.parametrize(
    ("completion", "answer"),
    [
        (r"\boxed{[1, 2]}", "(1,2)"),
        (r"\boxed{\frac{1}{3}}", "0.5"),
        ("no answer at all", "3"),
        (r"<think>the answer is \boxed{4}</think> 5", "4"),
    ],
)
def test_math_differences_are_wrong(completion: str, answer: str) -> None:
    assert not is_correct(completion, answer)


def test_math_accuracy_reward_handles_conversational_and_missing_answers() -> None:
    completions = [
        [{"role": "assistant", "content": r"<think>...</think> \boxed{\frac{1}{2}}"}],
        [{"role": "assistant", "content": r"\boxed{2}"}],
        [{"role": "assistant", "content": r"\boxed{2}"}],
    ]
    assert MathAccuracy()(completions, answer=["0.5", "3", None]) == [1.0, 0.0, None]


def test_correctness_rewards_log_failure_fractions_through_trl() -> None:
    logged: dict[str, float] = {}
    scores = MathAccuracy(timeout_s=1.0)(
        [r"\boxed{1}", "nothing", r"\boxed{9^{9^{9^{9}}}}", r"\boxed{2}"],
        answer=["1", "1", "1", "1"],
        log_metric=lambda name, value: logged.__setitem__(name, value),
    )
    assert scores == [1.0, 0.0, 0.0, 0.0]
    assert logged == {"math_accuracy/timeout_frac": 0.25, "math_accuracy/no_answer_frac": 0.25,
                      "math_accuracy/error_frac": 0.0, "math_accuracy/gold_unparseable_frac": 0.0}  # fmt: skip


def test_exact_and_numeric_tasks() -> None:
    scores = score_correctness(
        ["The answer is Paris.", "<think>..</think> paris", r"\boxed{1,000.0}", "the answer is 50%", "so 7"],
        ["paris", "Lyon", "1000", "0.5", "8"],
        ["exact", "exact", "numeric", "numeric", "numeric"],
        [None] * 5,
    )
    assert scores == [1.0, 0.0, 1.0, 1.0, 0.0]
    assert parse_number("$1,234.5") == 1234.5 and parse_number("abc") is None


def test_procedural_tasks_use_their_own_verifier() -> None:
    pytest.importorskip("rlr.tasks")
    scores = score_correctness(["<think>9+6+0=15 6+1+1=8</think> 85", "<think></think> 84"], ["85", "85"],
                               ["arithmetic", "arithmetic"], ["{}", "{}"])  # fmt: skip
    assert scores == [1.0, 0.0]
    with pytest.raises(UserError):
        score_correctness(["1"], ["1"], ["no_such_task"], [None])
    # Without an answer, a math row is skipped (None) but a procedural row still goes to its verifier.
    assert TaskScore()(["85", "85"], answer=[None, ""], task=["math", "arithmetic"]) == [None, 0.0]


def test_adversarial_inputs_time_out_and_are_counted() -> None:
    pool = MathVerifyPool(workers=2, timeout_s=1.0)
    try:
        hostile = [
            (r"\boxed{9^{9^{9^{9}}}}", "3"),
            (r"\boxed{" + r"\frac{" * 300 + "1" + "}{2}" * 300 + "}", "1"),
            (r"\boxed{9^9^9^9}", "3"),
            (r"\boxed{2}", "2"),
        ]
        start = time.monotonic()
        results = pool.score(hostile)
        elapsed = time.monotonic() - start
        # Each item is cut off at its own 1 s deadline (uncut, these run for minutes); the slack is for respawning
        # killed workers on a loaded CI machine, not a speed claim.
        assert elapsed < 30
        assert [score for score, _ in results] == [0.0, 0.0, 0.0, 1.0]
        assert results[0][1] == "timeout"
        # The pool replaced the killed workers and still works.
        assert pool.score([(r"\boxed{7}", "7")]) == [(1.0, "ok")]
    finally:
        pool.close()


def test_items_queued_behind_a_stuck_one_are_resent() -> None:
    pool = MathVerifyPool(workers=1, timeout_s=1.0)
    try:
        big = "x" * 100_000 + r" \boxed{1}"  # larger than a pipe buffer: sent only to an idle worker
        pairs = [(r"\boxed{9^{9^{9^{9}}}}", "3"), (r"\boxed{5}", "5"), (r"\boxed{6}", "7"), (big, "1")]
        assert pool.score(pairs) == [(0.0, "timeout"), (1.0, "ok"), (0.0, "ok"), (1.0, "ok")]
    finally:
        pool.close()


def test_stats_count_timeouts_and_no_answers() -> None:
    reset_correctness_stats()
    results = score_correctness_detailed(["no answer", r"\boxed{9^{9^{9^{9}}}}", r"\boxed{1}"], ["1", "1", "1"],
                                         timeout_s=1.0)  # fmt: skip
    assert [status for _, status in results] == ["no_answer", "timeout", "ok"]
    stats = correctness_stats()
    assert stats["items"] == 3 and stats["timeout"] == 1 and stats["no_answer"] == 1 and stats["correct"] == 1


def test_scoring_works_off_the_main_thread() -> None:
    """math-verify's own signal timeout fails off the main thread; ours must not."""
    out: list[list[float]] = []
    worker = threading.Thread(target=lambda: out.append(score_correctness([r"\boxed{\frac{2}{4}}"], ["0.5"])))
    worker.start()
    worker.join(timeout=30)
    assert out == [[1.0]]
