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
