"""Procedural tasks: exact trace formats, determinism, disjoint splits, verifiers on literal completions."""

from __future__ import annotations

import json
import pickle
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlr.errors import UserError
from rlr.tasks import TASKS, get_task, get_verifier, task_knobs
from rlr.tasks.arithmetic import add_trace, mul_trace, sub_trace
from rlr.tasks.countdown import extract_equation, parse_equation

# --- arithmetic ---------------------------------------------------------------------------------------------------


def test_addition_trace_is_the_measured_format() -> None:
    steps, result = add_trace(69, 16)
    assert f"<think>{' '.join(steps)}</think> {result}" == "<think>9+6+0=15 6+1+1=8</think> 85"


def test_addition_row_matches_feasibility_format() -> None:
    rows = get_task("arithmetic").generate(200, seed=3)
    row = rows[0]
    a, b = row["meta"]["a"], row["meta"]["b"]
    assert row["question"] == f"{a}+{b}="
    assert row["answer"] == str(a + b)
    steps, _ = add_trace(a, b)
    assert row["solution"] == f"<think>{' '.join(steps)}</think> {a + b}"
    assert all(10 <= r["meta"]["a"] <= 99 and 10 <= r["meta"]["b"] <= 99 for r in rows)


def test_subtraction_and_multiplication_traces() -> None:
    assert sub_trace(63, 27) == (["13-7-0=6", "6-2-1=3"], 36)
    assert sub_trace(100, 1) == (["10-1-0=9", "10-0-1=9", "1-0-1=0"], 99)
    assert mul_trace(69, 16) == (["69*6=414", "69*10=690", "414+690=1104"], 1104)
    assert mul_trace(7, 8) == (["7*8=56"], 56)


@settings(max_examples=60, deadline=None)
@given(
    digits=st.integers(1, 5),
    ops=st.lists(st.sampled_from(["+", "-", "*"]), min_size=1, max_size=3),
    seed=st.integers(0, 2**31),
)
def test_every_arithmetic_solution_verifies(digits: int, ops: list[str], seed: int) -> None:
    task = get_task("arithmetic", digits=digits, ops=ops)
    for row in task.generate(5, seed, unique=False):
        a, b, op = row["meta"]["a"], row["meta"]["b"], row["meta"]["op"]
        assert int(row["answer"]) == {"+": a + b, "-": a - b, "*": a * b}[op] >= 0
        assert task.verify(row["solution"], row["answer"], row["meta"]) == 1.0
        assert task.verify(row["solution"], str(int(row["answer"]) + 1), row["meta"]) == 0.0


def test_trace_false_gives_the_bare_answer() -> None:
    row = get_task("arithmetic", trace=False).generate(1, 0)[0]
    assert row["solution"] == row["answer"]


def test_tool_knob_writes_a_calculator_trace_that_the_tool_itself_confirms() -> None:
    from rlr.tools.calculator import calculator

    task = get_task("arithmetic", digits=3, ops=["*"], tool="calculator")
    for row in task.generate(20, seed=1):
        call, reply, final = row["meta"]["solution_turns"]
        expression = call["tool_calls"][0]["function"]["arguments"]["expression"]
        assert expression == row["question"].removesuffix("=")
        assert call["tool_calls"][0]["function"]["name"] == "calculator"
        assert reply == {"role": "tool", "name": "calculator", "content": calculator(expression)}
        assert final == {"role": "assistant", "content": row["answer"]} and row["solution"] == row["answer"]
        assert task.verify(final["content"], row["answer"], row["meta"]) == 1.0


@pytest.mark.parametrize(
    ("completion", "score"),
    [
        ("<think>9+6+0=15 6+1+1=8</think> 85", 1.0),
        ("<think>9+6+0=15 6+1+1=8</think> 86", 0.0),
        ("<think>85</think> 84", 0.0),  # the number after </think> decides, not one inside the trace
        ("<think>x</think> \\boxed{85}", 1.0),
        ("<think>x</think> <answer>85</answer>", 1.0),
        ("<think>x</think> 85.0", 1.0),
        ("69+16=85", 1.0),  # no think tag: last number
        ("the answer is 85", 1.0),
        ("<think>x</think>", 0.0),
        ("", 0.0),
    ],
)
def test_arithmetic_verifier(completion: str, score: float) -> None:
    assert get_task("arithmetic").verify(completion, "85", {}) == score


def test_arithmetic_verifier_thousands_and_negatives() -> None:
    verify = get_verifier("arithmetic")
    assert verify("<think>x</think> 1,104", "1104", {}) == 1.0
    assert verify("<think>x</think> -4", "-4", {}) == 1.0
    assert verify("7-11", "-4", {}) == 0.0  # a minus after a digit is an operator, not a sign


# --- generation contract (all procedural tasks) --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TASKS))
def test_generation_is_deterministic_and_prefix_stable(name: str) -> None:
    task = get_task(name)
    rows = task.generate(40, seed=7)
    assert rows == get_task(name).generate(40, seed=7)
    assert rows[:10] == task.generate(10, seed=7)
    assert rows != task.generate(40, seed=8)
    assert len({r["question"] for r in rows}) == 40
    assert set(rows[0]) == {"question", "answer", "solution", "meta"}
    json.dumps(rows)  # rows go to jsonl/parquet as they are


@pytest.mark.parametrize("name", sorted(TASKS))
def test_exclude_gives_disjoint_splits(name: str) -> None:
    task = get_task(name)
    eval_rows = task.generate(50, seed=1)
    train_rows = task.generate(300, seed=1, exclude={r["question"] for r in eval_rows})
    assert not {r["question"] for r in eval_rows} & {r["question"] for r in train_rows}


def test_exhausted_problem_space_is_a_user_error() -> None:
    task = get_task("arithmetic", digits=1)
    assert len(task.generate(100, 0)) == 100  # all of 0..9 + 0..9
    with pytest.raises(UserError, match="only 100 distinct"):
        task.generate(101, 0)
    assert len(task.generate(101, 0, unique=False)) == 101


# --- registry ------------------------------------------------------------------------------------------------------


def test_task_knobs_lists_types_defaults_and_help() -> None:
    knobs = task_knobs("arithmetic")
    assert list(knobs) == ["digits", "ops", "trace", "tool"]
    assert knobs["tool"].default == "" and knobs["tool"].type is str
    assert knobs["digits"].default == 2 and knobs["digits"].type is int and knobs["digits"].help
    assert knobs["ops"].default == ["+"]
    typ, default, help_ = task_knobs("countdown")["num_numbers"]
    assert (typ, default) == (int, 4) and help_
    assert task_knobs("countdown")["format_score"].default == 0.0


@pytest.mark.parametrize(
    ("name", "knobs", "message"),
    [
        ("arithmetc", {}, "did you mean 'arithmetic'"),
        ("arithmetic", {"digit": 3}, "did you mean 'digits'"),
        ("arithmetic", {"digits": 0}, "digits=0 is invalid"),
        ("arithmetic", {"digits": "many"}, "knob 'digits' must be int"),
        ("arithmetic", {"digits": 2.5}, "knob 'digits' must be int"),
        ("arithmetic", {"ops": ["/"]}, "ops=\\['/'\\] is invalid"),
        ("arithmetic", {"tool": "python"}, "tool='python' is invalid"),
        ("countdown", {"max_number": 50, "max_target": 10}, "exceeds max_target"),
        ("countdown", {"num_numbers": 1}, "use 2 to 8"),
        ("countdown", {"format_score": 2}, "format_score=2.0 is invalid"),
    ],
)
def test_get_task_errors_name_the_fix(name: str, knobs: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        get_task(name, **knobs)


def test_knob_strings_from_overrides_are_coerced() -> None:
    task = get_task("arithmetic", digits="3", trace="false", ops="*")
    assert (task.digits, task.trace, task.ops) == (3, False, ["*"])


def test_verifiers_are_picklable_for_worker_processes() -> None:
    verify = pickle.loads(pickle.dumps(get_verifier("countdown", format_score=0.1)))
    assert verify("<answer>1 + 2</answer>", "4", {"numbers": [1, 2], "target": 4}) == 0.1
    with pytest.raises(UserError, match="unknown task"):
        get_verifier("nope")


# --- countdown -----------------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(num_numbers=st.integers(2, 6), max_number=st.integers(1, 100), seed=st.integers(0, 2**31))
def test_every_countdown_problem_is_solvable(num_numbers: int, max_number: int, seed: int) -> None:
    task = get_task("countdown", num_numbers=num_numbers, max_number=max_number, max_target=500)
    for row in task.generate(5, seed, unique=False):
        numbers, target = row["meta"]["numbers"], row["meta"]["target"]
        assert len(numbers) == num_numbers and all(1 <= x <= max_number for x in numbers)
        assert 1 <= target <= 500 and row["answer"] == str(target)
        assert task.verify(f"<answer>{row['solution']}</answer>", row["answer"], row["meta"]) == 1.0


COUNTDOWN_META = {"numbers": [8, 3, 8, 3], "target": 24}


@pytest.mark.parametrize(
    ("completion", "score"),
    [
        ("<think>hmm</think> <answer>8 / (3 - 8 / 3)</answer>", 1.0),  # fractional intermediate is fine
        ("<answer> 8/(3-8/3) = 24 </answer>", 1.0),
        ("<think>try 8*3</think>\n8 / (3 - 8 / 3)\nthat works", 1.0),  # first line after </think>
        ("I think it is\n8 / (3 - 8 / 3)", 1.0),  # no tags: last line
        ("\\boxed{8 / (3 - 8 / 3)}", 1.0),
        ("<answer>8 * 3</answer>", 0.0),  # numbers left unused
        ("<answer>8 * 3 + 8 - 8</answer>", 0.0),  # 8 used three times, 3 once
        ("<answer>(8 + 8) * 3 / 3 + 3</answer>", 0.0),  # a 3 too many
        ("<answer>8 + 3 + 8 + 3</answer>", 0.0),  # wrong value
        ("<answer>8 / (3 - 3) + 8</answer>", 0.0),  # division by zero
        ("<answer>-8 + 3 * 8 + 3</answer>", 0.0),  # unary minus is not allowed
        ("<answer>8 ** 3 + 8 + 3</answer>", 0.0),  # power is not allowed
        ("<answer>__import__('os').system('true')</answer>", 0.0),
        ("<answer>8.0 / (3 - 8 / 3)</answer>", 0.0),  # only integers
        ("", 0.0),
    ],
)
def test_countdown_verifier(completion: str, score: float) -> None:
    assert get_task("countdown").verify(completion, "24", COUNTDOWN_META) == score


def test_countdown_format_score_only_for_well_formed_equations() -> None:
    task = get_task("countdown", format_score=0.1)
    assert task.verify("<answer>8 + 3 + 8 + 3</answer>", "24", COUNTDOWN_META) == 0.1
    assert task.verify("<answer>8 / (3 - 8 / 3)</answer>", "24", COUNTDOWN_META) == 1.0
    assert task.verify("<answer>eight</answer>", "24", COUNTDOWN_META) == 0.0
    with pytest.raises(UserError, match="meta\\['numbers'\\]"):
        task.verify("<answer>1</answer>", "24", {})


def test_countdown_equation_parsing() -> None:
    assert extract_equation("<answer>(1 + 2) / 3 = 1</answer>") == "(1 + 2) / 3"
    assert parse_equation("(1 + 2) / 3") == (1, [1, 2, 3])
    assert parse_equation("(" * 500 + "1" + ")" * 500) is None  # too long, never reaches the parser
    assert parse_equation("1 / 0") == (None, [1, 0])


# --- reasoning-gym -------------------------------------------------------------------------------------------------


def test_gym_without_the_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "reasoning_gym", None)  # makes `import reasoning_gym` raise ImportError
    with pytest.raises(UserError, match=r"pip install 'rlr\[gym\]'"):
        get_task("gym:countdown")
    with pytest.raises(UserError, match=r"pip install 'rlr\[gym\]'"):
        get_verifier("gym:countdown")


def test_gym_rows_score_in_another_process_from_the_row_alone() -> None:
    pytest.importorskip("reasoning_gym")
    rows = get_task("gym:chain_sum", min_terms=2, max_terms=3).generate(4, seed=5)
    assert rows == get_task("gym:chain_sum", min_terms=2, max_terms=3).generate(4, seed=5)
    rows = json.loads(json.dumps(rows))  # what a worker reads back from disk
    verify = pickle.loads(pickle.dumps(get_verifier("gym:chain_sum")))
    for row in rows:
        assert row["meta"]["gym"] == "chain_sum"
        assert verify(f"<think>x</think><answer>{row['answer']}</answer>", row["answer"], row["meta"]) == 1.0
        assert verify(f"</think> {row['answer']}", row["answer"], row["meta"]) == 1.0
        assert verify("<answer>no idea</answer>", row["answer"], row["meta"]) < 1.0


def test_gym_countdown_keeps_partial_credit() -> None:
    pytest.importorskip("reasoning_gym")
    row = get_task("gym:countdown").generate(1, seed=0)[0]
    verify = get_verifier("gym:countdown")
    assert verify(f"<answer>{row['answer']}</answer>", row["answer"], row["meta"]) == 1.0
    assert 0.0 < verify("<answer>1 + 2</answer>", row["answer"], row["meta"]) < 1.0


def test_gym_errors_name_the_fix() -> None:
    pytest.importorskip("reasoning_gym")
    with pytest.raises(UserError, match="did you mean gym:countdown"):
        get_task("gym:countdwn")
    with pytest.raises(UserError, match="valid knobs: .*min_numbers"):
        get_task("gym:countdown", bogus=1)
    assert "min_numbers" in task_knobs("gym:countdown")
    assert "seed" not in task_knobs("gym:countdown")
