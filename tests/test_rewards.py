"""Built-in rewards on literal completions, and the registry that builds them from a preset."""

from __future__ import annotations

import pickle
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rlr.errors import UserError
from rlr.rewards import REWARDS, build_reward_functions, validate_reward_specs
from rlr.rewards.code import CodeTests, extract_code
from rlr.rewards.format import ThinkFormat, answer_format, tag_count
from rlr.rewards.length import Cosine, LengthPenalty, Overlong, Repetition


@dataclass
class Spec:
    """Stand-in for the config's reward spec (anything with .name, .weight, .args)."""

    name: str
    weight: float = 1.0
    args: dict[str, Any] = field(default_factory=dict)


def conv(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


# --- format ------------------------------------------------------------------------------------------------


def test_think_format_shapes() -> None:
    completions = ["<think>2+2=4</think> 4", "</think> 4", "4", "<think>a</think>",
                   "<think>a</think><think>b</think> 4", "x <think>a</think> 4"]  # fmt: skip
    assert ThinkFormat()(completions) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert ThinkFormat(require_open_tag=True)(completions[:2]) == [1.0, 0.0]
    # A prompt that already opened <think> means the completion must not open another one.
    assert ThinkFormat()(completions[:2], prompts=["Q: 2+2?\n<think>", "Q: 2+2?\n<think>"]) == [0.0, 1.0]
    assert ThinkFormat()([conv("<think>a</think> 4")]) == [1.0]


def test_tag_count_partial_credit() -> None:
    completions = [
        "<think>x</think><answer>1</answer>",
        "<think>x</think> 1",
        "<think>x</think><answer>1</answer> trailing",
        "<answer>1</answer><think>x</think>",
        "1",
    ]
    assert tag_count(completions) == [1.0, 0.5, 0.75, 0.25, 0.0]


def test_answer_format() -> None:
    completions = [r"<think>..</think> \boxed{3}", r"<think>\boxed{3}</think> 3", r"\boxed{", r"\boxed{}", "3"]
    assert answer_format(completions) == [1.0, 0.0, 0.0, 0.0, 0.0]


# --- length ------------------------------------------------------------------------------------------------


def test_overlong_uses_token_ids_when_given_else_words() -> None:
    reward = Overlong(max_completion_len=10, soft_punish_cache=4)
    ids = [[0] * 5, [0] * 6, [0] * 8, [0] * 10, [0] * 30]
    assert reward(["x"] * 5, completion_ids=ids) == [0.0, 0.0, -0.5, -1.0, -1.0]
    assert reward(["a " * 8]) == [-0.5]
    with pytest.raises(ValueError):
        Overlong(max_completion_len=10, soft_punish_cache=20)


def test_cosine_scales_by_length_and_correctness() -> None:
    reward = Cosine(max_len=10)
    texts, answer = [r"\boxed{1}", r"\boxed{2}"] * 3, ["1"] * 6
    ids = [[0] * 0, [0] * 0, [0] * 5, [0] * 5, [0] * 50, [0] * 50]
    assert reward(texts, answer=answer, completion_ids=ids) == pytest.approx([1.0, -1.0, 0.75, -0.75, 0.5, -0.5])


def test_length_penalty_is_kimi_style_within_groups() -> None:
    texts = [r"\boxed{1}", r"a b c \boxed{1}", r"a b c d e f \boxed{1}", r"a b c d e f \boxed{2}", r"\boxed{9}"]
    prompts = ["q1", "q1", "q1", "q1", "q2"]
    scores = LengthPenalty()(texts, answer=["1", "1", "1", "1", "9"], prompts=prompts)
    # q1: lengths 1, 4, 7, 7 -> lambda 0.5, 0, -0.5, -0.5; the wrong one keeps min(0, lambda); q2 alone -> 0.
    assert scores == pytest.approx([0.5, 0.0, -0.5, -0.5, 0.0])


def test_repetition_penalty() -> None:
    reward = Repetition(ngram_size=2, max_penalty=-1.0)
    assert reward(["a b c d", "a b a b a b", "a", ""]) == pytest.approx([0.0, -0.6, 0.0, 0.0])
    with pytest.raises(ValueError):
        Repetition(max_penalty=0.5)


def test_repetition_penalises_degenerate_text_without_spaces() -> None:
    reward = Repetition()
    degenerate = ["ha" * 200, "好" * 100, "x=1+1=2;" * 20, "The answer is " + "ha" * 300]
    assert all(score < -0.9 for score in reward(degenerate)), reward(degenerate)
    fine = ["我们先计算两个数的和，然后把结果乘以三，最后得到答案是四十二。",
            "First add the two numbers, then multiply the sum by three: the answer is 42.",
            r"$\frac{1+\sqrt{5}}{2}$"]
    assert reward(fine) == [0.0, 0.0, 0.0]


# --- code --------------------------------------------------------------------------------------------------


def test_extract_code_takes_the_last_block() -> None:
    assert extract_code("```python\nx = 1\n```\ntext\n```python\nx = 2\n```") == "x = 2\n"
    assert extract_code("```\nprint(1)\n```") == "print(1)\n"
    assert extract_code("no code") is None


def test_code_tests_scores_pass_fraction() -> None:
    good = "```python\ndef add(a, b):\n    return a + b\n```"
    half = "```python\ndef add(a, b):\n    return a + b if a else 0\n```"
    tests = ["assert add(1, 2) == 3", "assert add(0, 2) == 2"]
    fake = "```python\nprint('__rlr_passed_0123456789abcdef__ 0')\nprint('__rlr_passed_0123456789abcdef__ 1')\n```"
    scores = CodeTests()([good, conv(half), "no code", fake, good], tests=[tests, tests, tests, tests, None],
                         meta=[None, None, None, None, "{}"])  # fmt: skip
    assert scores == [1.0, 0.5, 0.0, 0.0, None]
    assert CodeTests()([good], meta=['{"tests": ["assert add(2, 2) == 4"]}']) == [1.0]


# --- registry ----------------------------------------------------------------------------------------------


def test_every_builtin_builds_and_is_named_and_picklable() -> None:
    funcs, weights = build_reward_functions([Spec(name, 0.5) for name in REWARDS])
    assert [f.__name__ for f in funcs] == list(REWARDS) and weights == [0.5] * len(REWARDS)
    for func in funcs:
        clone = pickle.loads(pickle.dumps(func))
        assert clone.__name__ == func.__name__


def test_builtins_accept_both_completion_formats() -> None:
    funcs, _ = build_reward_functions([Spec(n) for n in REWARDS if n != "code_tests"])
    columns = {"answer": ["4"], "task": ["math"], "meta": ["{}"], "prompts": ["q"], "completion_ids": [[1, 2, 3]]}
    for func in funcs:
        plain = func(completions=[r"<think>2+2</think> \boxed{4}"], **columns)
        chat = func(completions=[conv(r"<think>2+2</think> \boxed{4}")], **columns)
        assert plain == chat and len(plain) == 1, func.__name__


def test_args_build_parameterized_rewards_and_duplicates_get_distinct_names() -> None:
    specs = [Spec("overlong", 1.0, {"max_completion_len": 100, "soft_punish_cache": 10}), Spec("overlong", 0.1),
             Spec("tag_count"), Spec("tag_count")]  # fmt: skip
    funcs, weights = build_reward_functions(specs)
    assert [f.__name__ for f in funcs] == ["overlong", "overlong_2", "tag_count", "tag_count_2"]
    assert funcs[0].max_completion_len == 100 and weights == [1.0, 0.1, 1.0, 1.0]
    assert tag_count.__name__ == "tag_count"  # the module-level function was wrapped, not renamed


def test_dict_specs_are_accepted() -> None:
    funcs, weights = build_reward_functions([{"name": "think_format", "weight": 0.2}])
    assert funcs[0].__name__ == "think_format" and weights == [0.2]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (Spec("math_acuracy"), "did you mean 'math_accuracy'"),
        (Spec("overlong", args={"max_completion_length": 3}), "did you mean 'max_completion_len'"),
        (Spec("tag_count", args={"x": 1}), "takes no args"),
        (Spec("repetition", args={"max_penalty": 1.0}), "max_penalty must be <= 0"),
        (Spec("code_tests", args={"test_timeout_s": 0}), "test_timeout_s must be a number > 0"),
        (Spec("code_tests", args={"test_timeout_s": "abc"}), "test_timeout_s must be a number > 0.*got 'abc'"),
        (Spec("no_such_module_xyz:f"), "cannot import module"),
        (Spec("missing.py:f"), "not found"),
    ],
)
def test_bad_specs_raise_user_errors_with_the_fix(spec: Spec, message: str) -> None:
    with pytest.raises(UserError, match=message):
        build_reward_functions([spec])


USER_REWARDS = """
def good(completions, answer, **kwargs):
    return [float(len(str(c)) > 3) for c in completions]

def no_kwargs(completions, answer):
    return [0.0 for _ in completions]

def no_completions(texts, **kwargs):
    return []

raise_me = 3
"""


def test_user_rewards_from_file_and_module(tmp_path: Path) -> None:
    (tmp_path / "my_rewards.py").write_text(USER_REWARDS)
    funcs, _ = build_reward_functions([Spec("my_rewards.py:good"), Spec("my_rewards:good")], base_dir=tmp_path)
    assert [f.__name__ for f in funcs] == ["my_rewards.py:good", "my_rewards:good"]
    assert funcs[0](completions=["abcd", "a"], answer=["", ""]) == [1.0, 0.0]
    clone = pickle.loads(pickle.dumps(funcs[0]))
    assert clone(completions=["abcd"], answer=[""]) == [1.0]


def test_user_reward_files_and_modules_resolve_from_the_current_directory_first(tmp_path, monkeypatch) -> None:
    """Like data files: the current directory, then the preset's."""
    here, preset_dir = tmp_path / "here", tmp_path / "presets"
    here.mkdir()
    preset_dir.mkdir()
    (here / "cwd_rewards.py").write_text(USER_REWARDS)
    other = "def good(completions, **kwargs):\n    return [7.0 for _ in completions]\n"
    (preset_dir / "cwd_rewards.py").write_text(other)
    monkeypatch.chdir(here)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the module lookup appends folders; leave no trace
    funcs, _ = build_reward_functions([Spec("cwd_rewards.py:good")], base_dir=preset_dir)
    assert funcs[0](completions=["abcd"], answer=[""]) == [1.0]  # the current directory's, not the preset's
    (here / "cwd_module_rewards.py").write_text(USER_REWARDS)
    funcs, _ = build_reward_functions([Spec("cwd_module_rewards:good")], base_dir=preset_dir)
    assert funcs[0](completions=["abcd"], answer=[""]) == [1.0]
    with pytest.raises(UserError, match=r"file nowhere.py not found in the current directory or the preset's"):
        build_reward_functions([Spec("nowhere.py:good")], base_dir=preset_dir)


def test_user_reward_problems_are_collected(tmp_path: Path) -> None:
    (tmp_path / "my_rewards.py").write_text(USER_REWARDS)
    (tmp_path / "broken.py").write_text("import does_not_exist_xyz\n")
    names = ["my_rewards.py:no_kwargs", "my_rewards.py:no_completions", "my_rewards.py:nope", "my_rewards.py:raise_me",
             "broken.py:f", "think_fromat", "math_accuracy"]  # fmt: skip
    specs = [Spec(name) for name in names]
    problems = validate_reward_specs(specs, base_dir=tmp_path)
    assert len(problems) == 6
    assert "**kwargs" in problems[0] and "**kwargs" in problems[1]
    assert "no function 'nope'" in problems[2] and "good" in problems[2]
    assert "not callable" in problems[3]
    assert "ModuleNotFoundError" in problems[4]
    assert "did you mean 'think_format'" in problems[5]
    assert validate_reward_specs([Spec("math_accuracy"), Spec("my_rewards.py:good")], base_dir=tmp_path) == []


@pytest.mark.parametrize(
    "module",
    ["extract", "correctness", "accuracy", "format", "length", "code", "math_check"],
)
def test_docstring_examples_hold(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"rlr.rewards.{module}"))
    assert result.failed == 0 and result.attempted > 0


def test_validate_reports_malformed_specs_without_raising() -> None:
    problems = validate_reward_specs(
        [{"weight": 1.0}, {"name": "tag_count", "weight": "high"}, {"name": "overlong", "args": [1, 2]}]
    )
    assert len(problems) == 3
    assert problems[0].startswith("rewards[0].name: missing")
    assert problems[1].startswith("rewards[1].weight: reward 'tag_count': must be a number")
    assert problems[2].startswith("rewards[2].args: reward 'overlong': must be a mapping")
    problems = validate_reward_specs([{"name": "overlong", "args": {"max_lenn": 8}}, {"name": "overlongg"}])
    assert problems[0].startswith("rewards[0].args.max_lenn: reward 'overlong': unknown arg 'max_lenn'")
    assert problems[1].startswith("rewards[1].name: unknown reward 'overlongg'")


def test_format_compliance_measures_the_format_the_template_asks_for() -> None:
    from rlr.rewards.format import follows_answer_format

    texts = [r"<think>a</think> \boxed{3}", "<think>a</think> <answer>3</answer>", "<think>a</think> 3", r"\boxed{3}"]
    prompts = [""] * 4
    assert follows_answer_format(texts, prompts, "boxed") == [1.0, 0.0, 0.0, 1.0]
    assert follows_answer_format(texts, prompts, "answer_tag") == [0.0, 1.0, 0.0, 0.0]
    assert follows_answer_format(texts, prompts, "after_think") == [1.0, 1.0, 1.0, 0.0]
    assert follows_answer_format(texts, prompts, "none") == [1.0, 1.0, 1.0, 0.0]


PARAMETERIZED_USER_REWARDS = """
def brevity(completions, max_words=3, **kwargs):
    return [float(len(str(c).split()) <= max_words) for c in completions]

class Contains:
    def __init__(self, word, score=1.0):
        self.word, self.score = word, score

    def __call__(self, completions, **kwargs):
        return [self.score if self.word in str(c) else 0.0 for c in completions]
"""


def test_user_rewards_take_args_like_the_built_ins(tmp_path: Path) -> None:
    (tmp_path / "param_rewards.py").write_text(PARAMETERIZED_USER_REWARDS)
    specs = [Spec("param_rewards.py:brevity", args={"max_words": 1}), Spec("param_rewards.py:brevity"),
             Spec("param_rewards.py:Contains", args={"word": "42", "score": 0.5})]
    funcs, _ = build_reward_functions(specs, base_dir=tmp_path)
    texts = ["42", "it is 42"]
    assert [f(completions=texts, answer=["", ""]) for f in funcs] == [[1.0, 0.0], [1.0, 1.0], [0.5, 0.5]]
    clone = pickle.loads(pickle.dumps(funcs[2]))  # reward workers get the reference and the args
    assert clone(completions=["no"], answer=[""]) == [0.0] and clone.__name__ == funcs[2].__name__
    problems = validate_reward_specs([Spec("param_rewards.py:brevity", args={"max_word": 1}),
                                      Spec("param_rewards.py:Contains")], base_dir=tmp_path)
    assert problems[0].startswith("rewards[0].args.max_word: reward 'param_rewards.py:brevity': unknown arg "
                                  "'max_word' (did you mean 'max_words'?)")
    assert problems[1].startswith("rewards[1].args: reward 'param_rewards.py:Contains': bad args {}")
