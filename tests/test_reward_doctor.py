"""`rlr rewards check` core: scores per completion and the warnings that save a wasted run."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from rlr.rewards import build_reward_functions
from rlr.rewards.doctor import DoctorReport, chat_template_inserts_think, check_rewards

ROWS = [
    {"prompt": [{"role": "user", "content": "2+2?"}], "answer": "4", "solution": None, "task": "math", "meta": "{}"},
    {"prompt": [{"role": "user", "content": "1/2?"}], "answer": "0.5", "solution": None, "task": "math", "meta": "{}"},
]
COMPLETIONS = [
    [r"<think>2+2</think> \boxed{4}", "<think>hmm, let me think about it"],
    [r"<think>half</think> \boxed{\frac{1}{2}}", r"<think>half</think> \boxed{0.4}"],
]


def raising_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    raise RuntimeError("boom")


def test_check_rewards_scores_and_warns() -> None:
    funcs, _ = build_reward_functions([{"name": "math_accuracy"}, {"name": "think_format"}, {"name": "repetition"}])
    names = ["math_accuracy", "think_format", "repetition", "bad"]
    report = check_rewards(ROWS, COMPLETIONS, [*funcs, raising_reward], names)
    assert report.scores["math_accuracy"] == [1.0, 0.0, 1.0, 0.0]
    assert report.scores["think_format"] == [1.0, 0.0, 1.0, 1.0]
    assert report.scores["repetition"] == [0.0, 0.0, 0.0, 0.0]
    assert report.rows[1]["extracted"] is None and report.rows[2]["extracted"] == r"\frac{1}{2}"
    warnings = "\n".join(report.warnings)
    assert "repetition: constant 0" in warnings and "think_format" not in warnings
    assert "bad: raised RuntimeError: boom" in warnings
    assert "no final answer found in 1 of 4" in warnings
    assert "math_accuracy" not in warnings
    data = report.to_dict()
    json.dumps(data)
    assert data["rewards"]["math_accuracy"]["mean"] == 0.5 and not data["ok"]
    assert data["completions"][0]["scores"] == {
        "math_accuracy": 1.0,
        "think_format": 1.0,
        "repetition": 0.0,
        "bad": None,
    }


def test_rewards_flat_within_every_group_are_flagged() -> None:
    funcs, _ = build_reward_functions([{"name": "math_accuracy"}])
    completions = [[r"\boxed{4}", r"\boxed{4}"], [r"\boxed{1}", r"\boxed{2}"]]  # all right, then all wrong
    report = check_rewards(ROWS, completions, funcs, ["math_accuracy"])
    assert report.scores["math_accuracy"] == [1.0, 1.0, 0.0, 0.0]
    assert report.zero_std_fraction("math_accuracy") == 1.0
    assert any("never within a prompt's samples" in w for w in report.warnings)
    assert report.to_dict()["rewards"]["math_accuracy"]["zero_std_frac"] == 1.0


def test_timeouts_are_reported() -> None:
    funcs, _ = build_reward_functions([{"name": "math_accuracy", "args": {"timeout_s": 1.0}}])
    rows = [{"prompt": "q", "answer": "3", "task": "math", "meta": "{}"}]
    report = check_rewards(rows, [[r"\boxed{9^{9^{9^{9}}}}", r"\boxed{3}"]], funcs, ["math_accuracy"])
    assert report.scores["math_accuracy"] == [0.0, 1.0]
    assert any("timed out" in w for w in report.warnings)


def test_unreadable_ground_truth_is_reported() -> None:
    funcs, _ = build_reward_functions([{"name": "math_accuracy"}])
    rows = [{"prompt": "q", "answer": "see the figure above", "task": "math", "meta": "{}"},
            {"prompt": "r", "answer": "3", "task": "math", "meta": "{}"}]
    report = check_rewards(rows, [[r"\boxed{3}"], [r"\boxed{3}"]], funcs, ["math_accuracy"])
    assert report.scores["math_accuracy"] == [None, 1.0]
    assert any("1 completion(s) belong to rows whose ground truth math-verify cannot read" in w
               for w in report.warnings)


def test_report_renders_as_a_rich_table() -> None:
    from rich.console import Console

    funcs, _ = build_reward_functions([{"name": "tag_count"}])
    report = check_rewards(ROWS, COMPLETIONS, funcs, ["tag_count"])
    buffer = io.StringIO()
    report.render(Console(file=buffer, width=200))
    text = buffer.getvalue()
    assert "tag_count" in text and "warning:" in text
    assert isinstance(report, DoctorReport) and report.to_table().row_count == 4


CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{{ opener }}{% endif %}"
)


@pytest.mark.parametrize(
    ("opener", "expected"), [("", False), ("<think>\n", True), ("<think>\n\n</think>\n\n", False)]
)
def test_chat_template_inserts_think(opener: str, expected: bool) -> None:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel({"<unk>": 0}, unk_token="<unk>")))
    tokenizer.chat_template = CHATML.replace("{{ opener }}", opener)
    assert chat_template_inserts_think(tokenizer) is expected


def test_no_chat_template_means_no_think() -> None:
    assert chat_template_inserts_think(object()) is False


def test_rewards_check_cli_with_a_completions_file(cli, make_preset, tmp_path) -> None:
    lines = [
        {"answer": "4", "task": "numeric", "completion": "<think>2+2</think> 4"},
        {"answer": "4", "task": "numeric", "completions": ["<think>2+2</think> 5", "<think>hmm"]},
    ]
    path = tmp_path / "completions.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    preset = make_preset(rewards=[{"name": "accuracy"}, {"name": "think_format", "weight": 0.2}])
    result = cli("rewards", "check", preset, "--completions", path, "--json")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert [c["scores"]["accuracy"] for c in summary["completions"]] == [1.0, 0.0, 0.0]
    assert any("no final answer found in 1 of 3" in w for w in summary["warnings"])


@pytest.mark.parametrize(("line", "expected"), [
    ({"row": "abc", "completion": "4"}, "completions.jsonl:1: 'row' must be an index into the train split"),
    ({"answer": "4", "completions": "<think>2+2</think> 4"}, "completions.jsonl:1: 'completions' must be a list"),
])
def test_rewards_check_completions_file_with_wrong_types_exits_2_naming_the_line(line, expected, cli, make_preset,
                                                                                  tmp_path) -> None:
    """A string under `completions` was scored as one completion per character; a non-integer `row` was exit 1."""
    path = tmp_path / "completions.jsonl"
    path.write_text(json.dumps(line) + "\n")
    result = cli("rewards", "check", make_preset(), "--completions", path)
    assert result.code == 2 and expected in result.stderr and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize(("reward", "key"), [
    ({"name": "math_accuracy", "args": {"timeout_s": "fast"}}, "rewards[1].args.timeout_s: reward 'math_accuracy': "
                                                                "timeout_s must be a number or null, got 'fast'"),
    ({"name": "math_accuracy", "args": {"timeoutt": 3}}, "rewards[1].args.timeoutt: reward 'math_accuracy': unknown "
                                                         "arg 'timeoutt'; did you mean 'timeout_s'?"),
    ({"name": "repetition", "args": {"max_penalty": 1}}, "rewards[1].args.max_penalty: reward 'repetition': bad args"),
    ({"name": "overlong", "args": [4]}, "rewards[1].args: expected a mapping"),
])
@pytest.mark.parametrize("mode", ["--completions", "--gold"])
def test_rewards_check_names_a_bad_arg_by_its_key(reward, key, mode, cli, make_preset, tmp_path) -> None:
    """`rlr rewards check` built the rewards without the config check: a bad arg was an unnamed error, or (a value of
    the wrong type) a warning per completion and exit 0."""
    path = tmp_path / "completions.jsonl"
    path.write_text(json.dumps({"answer": "4", "completion": "4"}) + "\n")
    preset = make_preset(rewards=[{"name": "accuracy"}, reward])
    r = cli("rewards", "check", preset, *(["--completions", path] if mode == "--completions" else ["--gold"]))
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert r.code == 2 and errors == [line for line in r.stderr.splitlines() if line.strip()], r.stderr
    assert len(errors) == 1 and errors[0].startswith(f"error: {key}") and "Traceback" not in r.stderr, r.stderr


def test_rewards_check_cli_samples_from_the_model(cli, make_preset, micro_model) -> None:
    preset = make_preset(model=micro_model, rewards=[{"name": "accuracy"}, {"name": "overlong"}],
                         rl={"trainer": {"max_completion_length": 8}})  # fmt: skip
    assert cli("prepare-data", preset).code == 0
    result = cli("rewards", "check", preset, "--samples", "2", "--prompts", "2", "--json")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert len(summary["completions"]) == 4 and set(summary["rewards"]) == {"accuracy", "overlong"}
    # A random micro model never answers: the doctor must say the accuracy reward gives no signal.
    assert any(w.startswith("accuracy: constant 0") for w in summary["warnings"])


# --- --gold: the verifier audited on the data's own references ---------------------------------------------


def _math_file(path, rows: int = 30):
    """MATH-shaped rows: the `solution` column is a worked solution ending in \\boxed{answer}."""
    lines = [{"problem": f"Solve $x-{i}={2 * i + 1}$.",
              "solution": f"Add {i} to both sides.\nSo $x=\\boxed{{{3 * i + 1}}}$."} for i in range(rows)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_gold_check_passes_a_matching_preset_and_fails_a_mismatched_one(cli, make_preset, tmp_path) -> None:
    data = _math_file(tmp_path / "math.jsonl")
    good = make_preset(name="good", template={"system": "r1_think", "answer_format": "boxed"},
                       data={"train": {"source": str(data), "question": "problem", "answer": "solution"}},
                       rewards=[{"name": "exact_match"}, {"name": "math_accuracy"}, {"name": "think_format"}])
    assert cli("prepare-data", good).code == 0
    result = cli("rewards", "check", good, "--gold", "--json")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] and set(summary["rewards"]) == {"exact_match", "math_accuracy"}  # correctness ones only
    for name in ("exact_match", "math_accuracy"):
        assert summary["rewards"][name]["own_scored"] == 30 and summary["rewards"][name]["other_scored"] == 30
        assert summary["rewards"][name]["fn_rate"] == 0.0 and summary["rewards"][name]["fp_rate"] == 0.0

    # answer_format: plain keeps the whole worked solution as the gold: exact_match can never pay a right answer
    bad = make_preset(name="bad", template={"system": "r1_think", "answer_format": "boxed"},
                      data={"train": {"source": str(data), "question": "problem", "answer": "solution",
                                      "answer_format": "plain"}},
                      rewards=[{"name": "exact_match"}, {"name": "math_accuracy"}])
    assert cli("prepare-data", bad).code == 0
    result = cli("rewards", "check", bad, "--gold")
    assert result.code == 1
    assert "exact_match false-negative rate 100.0% > 2.0%" in result.stderr
    assert "exact_match false negative: row 0 gold 'Add " in result.stderr  # examples, one line each
    assert "scored 0 on its own reference '<think>\\nThe reference answer.\\n</think>\\n\\\\boxed{" in result.stderr
    assert "math_accuracy" not in result.stderr.split("gate failed:")[1]  # math-verify reads the passage's box
    json_run = cli("rewards", "check", bad, "--gold", "--json", "--prompts", "5")
    assert json_run.code == 1
    summary = json.loads(json_run.stdout)
    assert summary["rows"] == 5 and summary["rewards"]["exact_match"]["false_negatives"] == 5
    assert summary["rewards"]["exact_match"]["fn_examples"][0]["gold"].startswith("Add ")


def always_pays(completions: list[Any], **kwargs: Any) -> list[float]:
    return [1.0] * len(completions)


always_pays.measures_correctness = True  # type: ignore[attr-defined]


def test_gold_check_catches_a_reward_that_always_pays_and_unreadable_golds() -> None:
    from rlr.rewards.gold_check import check_gold

    rows = [{"answer": str(i), "task": "math", "solution": None, "meta": "{}"} for i in range(10)]
    rows += [{"answer": "hello world", "task": "math", "solution": None, "meta": "{}"}]  # math-verify cannot read it
    funcs, _ = build_reward_functions([{"name": "math_accuracy"}])
    report = check_gold(rows, [*funcs, always_pays], ["math_accuracy", "always_pays"], "boxed", thinks=False)
    accuracy, pays = report.results
    assert (accuracy.own_scored, accuracy.gold_unparseable, accuracy.fn_rate, accuracy.fp_rate) == (10, 1, 0.0, 0.0)
    assert pays.fp_rate == 1.0 and pays.false_positives[0].completion == "\\boxed{1}"
    assert report.failures == ["always_pays false-positive rate 100.0% > 2.0%"]
    # the same answer on every row: no row can probe another for false positives
    same = check_gold([{"answer": "4", "task": "math"}] * 3, funcs, ["math_accuracy"], "answer_tag", thinks=True)
    assert same.no_partner == 3 and same.results[0].other_scored == 0 and same.ok


def test_gold_check_runs_code_rows_reference_solutions_in_the_sandbox() -> None:
    from rlr.rewards.gold_check import check_gold, reference_completion

    rows = [{"answer": "", "task": "code", "solution": "def f(x):\n    return x + 1\n",
             "tests": ["assert f(1) == 2", "assert isinstance(f(1), int)"]},  # the second test is weak
            {"answer": "", "task": "code", "solution": "```python\ndef f(x):\n    return x * 3\n```",
             "tests": ["assert f(1) == 3", "assert f(2) == 6"]},
            {"answer": "", "task": "code", "solution": None, "tests": ["assert f(0) == 0"]}]
    assert reference_completion(rows[0], "boxed", True).startswith("```python\ndef f(x):")
    funcs, _ = build_reward_functions([{"name": "code_tests", "args": {"workers": 1}}])
    report = check_gold(rows, funcs, ["code_tests"], "boxed", thinks=True)
    result = report.results[0]
    assert (result.own_scored, result.other_scored, len(result.false_negatives)) == (2, 2, 0)
    # x * 3 passes row 0's weak test: half the reward for code that solves another problem
    assert [(c.row, c.source, c.score) for c in result.false_positives] == [(0, 1, 0.5)]
    assert report.no_reference == 1 and not report.ok


def test_gold_check_uses_a_procedural_tasks_own_solution_and_pairs_rows_by_answer() -> None:
    from rlr.rewards.gold_check import check_gold

    rows = [{"answer": "127", "task": "arithmetic", "solution": "<think>3+4+0=7 5+7+0=12</think> 127", "meta": "{}"},
            {"answer": "127", "task": "arithmetic", "solution": "<think>2+5+0=7 7+5+0=12</think> 127", "meta": "{}"},
            {"answer": "58", "task": "arithmetic", "solution": "<think>3+5+0=8 1+4+0=5</think> 58", "meta": "{}"}]
    funcs, _ = build_reward_functions([{"name": "accuracy"}])
    report = check_gold(rows, funcs, ["accuracy"], "none", thinks=False)
    result = report.results[0]
    # two different sums with the same result are not a false positive: row 0's probe is row 2, not row 1
    assert (result.own_scored, result.other_scored, result.fn_rate, result.fp_rate) == (3, 3, 0.0, 0.0)
