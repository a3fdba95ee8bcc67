"""`rlr evaluate` on presets with rl.tools / rl.environment: episodes run the training tools, counted and kept whole.

An untrained model almost never writes a well-formed tool call, so the episodes' mechanics are checked with a
scripted turn generator (it writes given turns, as the model would, into the same token contexts) both directly and
through the real CLI (patched in place of the HF one); one CLI run also uses the real micro model end to end.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from test_agentic_rl import rlr as run_rlr
from test_agentic_rl import tool_caller  # noqa: F401 -- the SFT'd calculator caller, for the slow test

from rlr.config.load import load_config
from rlr.evaluate.generate import GenerationSettings

HOSTILE = '''
import time


def boom(x: str) -> str:
    """Always raises.

    Args:
        x: Ignored.
    """
    raise RuntimeError("tool crashed")


def hang(x: str) -> str:
    """Never returns in time.

    Args:
        x: Ignored.
    """
    time.sleep(30)
    return "late"
'''


def call(name: str, **arguments: Any) -> str:
    return "<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"


def scripted(tokenizer: Any, next_turn: Any) -> Any:
    """A turn generator writing `next_turn(decoded context)` + eos, cut to the budget like the model's turns."""

    def generate(contexts: list[list[int]], budgets: list[int], settings: GenerationSettings) -> list[list[int]]:
        out = []
        for context, budget in zip(contexts, budgets, strict=True):
            text = next_turn(tokenizer.decode(context)) + tokenizer.eos_token
            out.append(tokenizer(text, add_special_tokens=False)["input_ids"][:budget])
        return out

    return generate


def by_turn(*turns: str) -> Any:
    """The k-th assistant turn of an episode writes turns[k]."""
    return lambda context: turns[context.count("<|im_start|>assistant") - 1]


def binary_search(context: str) -> str:
    """guess_number played well: bisect on the replies so far, answer once one says correct."""
    guesses = [int(g) for g in re.findall(r'"number": (\d+)', context)]
    replies = re.findall(r"<tool_response>\n(\w+)", context)
    if replies and replies[-1] == "correct":
        return f"The number is {guesses[-1]}."
    low, high = 1, 100
    for guess, reply in zip(guesses, replies, strict=True):
        low, high = (guess + 1, high) if reply == "higher" else (low, guess - 1)
    return call("guess", number=(low + high) // 2)


@pytest.fixture(scope="module")
def micro_1k(tmp_path_factory) -> Path:
    """The micro model with room for tool turns (the tool list alone is a system turn)."""
    from rlr.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "micro-1k", size="micro", seed=0, max_positions=1024)


def tool_preset(make_preset: Any, tmp_path: Path, model: Path, name: str = "tools", **rl: Any) -> Path:
    (tmp_path / "hostile.py").write_text(HOSTILE)
    return make_preset(model=model, name=name, rl={"tool_timeout_s": 0.5, **rl},
                       eval={"benchmarks": ["eval"], "samples": 1, "k": [1], "temperature": 1.0, "top_p": 1.0,
                             "max_new_tokens": 96, "batch_size": 8})


def rollouts(preset: Path, model: Path, next_turn: Any) -> Any:
    from transformers import AutoTokenizer

    from rlr.evaluate.tool_rollout import ToolRollouts, tool_setup

    tokenizer = AutoTokenizer.from_pretrained(model)
    setup = tool_setup(load_config(preset), tokenizer)
    assert setup is not None
    return ToolRollouts(tokenizer, setup, scripted(tokenizer, next_turn), context_limit=1024)


def episode(runner: Any, question: str = "6*7=", max_new_tokens: int = 900, **row: Any) -> Any:
    from rlr.evaluate.tool_rollout import episode_completion

    settings = GenerationSettings(n=1, max_new_tokens=max_new_tokens, batch_size=8)
    return episode_completion(runner.run([{"prompt": [{"role": "user", "content": question}], **row}], settings)[0])


def test_a_tool_call_runs_and_the_transcript_keeps_every_turn(make_preset, micro_1k, tmp_path):
    preset = tool_preset(make_preset, tmp_path, micro_1k, tools=["calculator"])
    runner = rollouts(preset, micro_1k, by_turn(call("calculator", expression="6*7"), "The answer is 42"))
    done = episode(runner)
    ep = done.episode
    assert [m["role"] for m in ep["transcript"]] == ["assistant", "tool", "assistant"]
    assert ep["transcript"][0]["tool_calls"][0]["function"] == {"name": "calculator",
                                                                "arguments": {"expression": "6*7"}}
    assert ep["transcript"][1] == {"role": "tool", "name": "calculator", "content": "42"}
    assert (ep["tool_calls"], ep["tool_errors"], ep["turns"]) == (1, 0, 2)
    assert done.text == "The answer is 42"  # what TRL hands the rewards: the assistant turns' text, no tool markup
    assert not done.truncated and "env_reward" not in ep
    tok = runner.tokenizer
    written = [call("calculator", expression="6*7"), "The answer is 42"]
    assert done.length == sum(len(tok(t + tok.eos_token)["input_ids"]) for t in written)  # not the reply's tokens


def test_raising_hanging_and_unknown_tools_are_errors_and_the_episode_goes_on(make_preset, micro_1k, tmp_path):
    preset = tool_preset(make_preset, tmp_path, micro_1k, tools=["calculator", "hostile.py:boom", "hostile.py:hang"])
    both = call("boom", x="a") + call("hang", x="b")
    runner = rollouts(preset, micro_1k, by_turn(both, call("nope", x="c"), call("calculator", expression="1/0"),
                                                "done"))
    ep = episode(runner).episode
    replies = [m["content"] for m in ep["transcript"] if m["role"] == "tool"]
    assert "tool crashed" in replies[0] and "did not return within 0.5 s" in replies[1]
    assert "Tool nope not found" in replies[2] and "division by zero" in replies[3]
    assert (ep["tool_calls"], ep["tool_errors"], ep["turns"]) == (4, 4, 4)
    assert ep["transcript"][-1]["content"] == "done"


def test_max_tool_calling_iterations_ends_the_episode(make_preset, micro_1k, tmp_path):
    preset = tool_preset(make_preset, tmp_path, micro_1k, tools=["calculator"],
                         trainer={"max_tool_calling_iterations": 2})
    runner = rollouts(preset, micro_1k, lambda context: call("calculator", expression="1+1"))
    ep = episode(runner).episode
    assert (ep["tool_calls"], ep["turns"]) == (2, 3)  # the third turn's call is never run, as in TRL
    assert ep["transcript"][-1]["tool_calls"]


def test_a_tool_reply_past_the_token_budget_ends_the_episode(make_preset, micro_1k, tmp_path):
    """TRL's rule: a reply that would push the episode past its budget is rolled back; the call still counts."""
    preset = tool_preset(make_preset, tmp_path, micro_1k, tools=["calculator"])
    runner = rollouts(preset, micro_1k, by_turn(call("calculator", expression="6*7"), "The answer is 42"))
    tok = runner.tokenizer
    done = episode(runner, max_new_tokens=len(tok(call("calculator", expression="6*7") + tok.eos_token)["input_ids"]))
    assert done.truncated and [m["role"] for m in done.episode["transcript"]] == ["assistant"]
    assert (done.episode["tool_calls"], done.episode["turns"]) == (1, 1)


def test_environment_episode_uses_its_tools_and_reward(make_preset, micro_1k, tmp_path):
    preset = tool_preset(make_preset, tmp_path, micro_1k, environment="guess_number")
    done = episode(rollouts(preset, micro_1k, binary_search), "Guess.", answer="37")
    ep = done.episode
    assert ep["turns"] > 2 and ep["tool_errors"] == 0 and done.text.endswith("The number is 37.")
    assert ep["env_reward"] == pytest.approx(1.0 - 0.05 * (ep["tool_calls"] - 1))


def test_without_tools_the_generator_and_identity_are_unchanged(make_preset, micro_model):
    from rlr.evaluate.tool_rollout import tool_identity, with_tools

    loaded = load_config(make_preset(model=micro_model, name="plain"))
    generator = object()
    assert with_tools(generator, loaded) is generator and tool_identity(loaded.cfg) == {}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_evaluate_cli_runs_the_micro_model_with_calculator(cli, make_preset, micro_1k, tmp_path):
    preset = tool_preset(make_preset, tmp_path, micro_1k, name="calc", tools=["calculator"])
    assert cli("prepare-data", preset).code == 0
    result = cli("evaluate", preset, "--limit", "4", "--json")
    assert result.code == 0, result.stderr
    run = tmp_path / "runs" / "calc" / "eval" / "base"
    metrics = json.loads((run / "results.json").read_text())["benchmarks"]["eval"]
    assert metrics["turns_per_episode"] >= 1 and metrics["tool_calls_per_episode"] >= 0
    assert 0 <= metrics["tool_error_rate"] <= 1
    samples = read_jsonl(run / "samples.jsonl")
    assert len(samples) == 4 and all(s["transcript"][0]["role"] == "assistant" and s["turns"] >= 1
                                     for s in samples)
    assert "Tools: calculator(expression)" in samples[0]["prompt"]  # the tools are listed, as in training


def test_evaluate_cli_plays_guess_number_episodes(cli, make_preset, micro_1k, tmp_path, monkeypatch):
    from rlr.evaluate import tool_rollout

    monkeypatch.setattr(tool_rollout, "hf_turns", lambda hf: scripted(hf.tokenizer, binary_search))
    preset = make_preset(model=micro_1k, name="guess", rl={"environment": "guess_number"},
                         data={"train": {"source": "env:guess_number", "rows": 16},
                               "eval": {"source": "env:guess_number", "rows": 3}, "dedup": "none",
                               "decontaminate": {"enabled": False}},  # one prompt text for every secret
                         rewards=[{"name": "accuracy"}],
                         eval={"benchmarks": ["eval"], "samples": 1, "k": [1], "max_new_tokens": 800})
    assert cli("prepare-data", preset).code == 0
    result = cli("evaluate", preset, "--json")
    assert result.code == 0, result.stderr
    run = tmp_path / "runs" / "guess" / "eval" / "base"
    res = json.loads((run / "results.json").read_text())
    metrics = res["benchmarks"]["eval"]
    assert metrics["turns_per_episode"] > 1 and metrics["tool_error_rate"] == 0
    assert 0.6 <= metrics["env_reward"] <= 1  # get_reward of each episode, averaged
    assert metrics["pass@1"] == 1.0  # the final reply names the secret: scored by the same accuracy reward
    assert res["generation"]["tool_rollouts"]["environment"] == "guess_number"
    for sample in read_jsonl(run / "samples.jsonl"):
        assert sample["turns"] == sample["tool_calls"] + 1 and sample["correct"]
        assert [m["content"] for m in sample["transcript"] if m["role"] == "tool"][-1] == "correct"


@pytest.mark.slow  # the SFT of tests/test_agentic_rl.py's tool caller: about a minute on 2 cores
def test_evaluate_runs_a_model_that_calls_the_calculator(tool_caller):  # noqa: F811 -- the fixture
    """A model SFT'd to call `calculator` really does in `rlr evaluate`, and the real tool answers it."""
    run_rlr("evaluate", "calc.yaml", "--model", "sft", "--limit", "8", "eval.benchmarks=[calc.jsonl]",
        "eval.max_new_tokens=160", cwd=tool_caller)
    run = tool_caller / "runs" / "calc" / "eval" / "sft"
    metrics = json.loads((run / "results.json").read_text())["benchmarks"]["calc"]
    assert metrics["tool_calls_per_episode"] >= 0.5 and metrics["tool_error_rate"] == 0
    assert metrics["turns_per_episode"] > 1
    for sample in read_jsonl(run / "samples.jsonl"):
        if sample["tool_calls"]:  # max_tool_calling_iterations=1: call, reply, then the answer turn
            function, reply = sample["transcript"][0]["tool_calls"][0]["function"], sample["transcript"][1]
            a, b = map(int, function["arguments"]["expression"].split("*"))
            assert reply == {"role": "tool", "name": "calculator", "content": str(a * b)}
