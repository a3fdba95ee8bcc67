"""`rlr train-rl` with rl.tools on the tiny model, end to end: tool calls run during rollouts, their replies are
masked from the loss, and hostile tools (hanging, crashing, exiting, flooding) score their rollout and never stop
training.

A randomly initialised model never writes a well-formed tool call, so the module first teaches one with rlr's own
SFT on synthetic tool-use traces (the calls as the chat template renders them, with the tools listed in the prompt as
RL will list them): `<tool_call>{"name": "calculator", "arguments": {"expression": "a*b"}}</tool_call>`.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rl_helpers import assert_sampled_lift

pytestmark = pytest.mark.slow  # SFT + two short RL runs: about 2 minutes on 2 cores

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
       "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}

HOSTILE = '''
import itertools
import sys
import time

from rlr.tools.python import make_python_tool

_calls = itertools.count()
_sandboxed = make_python_tool(timeout_s=0.3)  # inside the guard's 1 s


def calculator(expression: str) -> str:
    """Pretends to calculate; each call misbehaves in the next way.

    Args:
        expression: Ignored.
    """
    kind = next(_calls) % 5
    if kind == 0:
        time.sleep(3600)  # hangs: the guard's time limit answers instead
    if kind == 1:
        raise RuntimeError("tool crashed")
    if kind == 2:
        sys.exit(3)  # SystemExit is not an Exception: TRL alone would stop training here
    if kind == 3:
        return "9" * 10_000_000  # 10 MB into the context
    return _sandboxed("while True:\\n    pass")  # a hanging program in the sandbox
'''


def rlr(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "rlr", *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def tool_caller(tmp_path_factory) -> Path:
    """A directory with a preset whose SFT stage taught the micro model to call `calculator`."""
    root = tmp_path_factory.mktemp("agentic")
    rng = random.Random(0)
    with open(root / "calc.jsonl", "w") as f:
        for _ in range(64):
            a, b = rng.randint(10, 99), rng.randint(10, 99)
            call = json.dumps({"name": "calculator", "arguments": {"expression": f"{a}*{b}"}})
            f.write(json.dumps({"question": f"{a}*{b}=", "answer": str(a * b),
                                "solution": f"<tool_call>{call}</tool_call>"}) + "\n")
    (root / "hostile.py").write_text(HOSTILE)
    preset = {
        "run": {"name": "calc", "output_dir": "runs", "seed": 0},
        "model": {"name_or_path": str(root / "micro")},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
        "template": {"system": "none", "answer_format": "none"},
        "data": {"train": {"source": "calc.jsonl", "solution": "solution", "task": "numeric"}},
        "rewards": [{"name": "accuracy"}],
        "sft": {"use_lora": False, "trainer": {"max_steps": 150, "learning_rate": 5e-3,
                                               "per_device_train_batch_size": 16, "save_steps": 1000}},
        "rl": {"tools": ["calculator"], "sample_log_every": 1, "tool_timeout_s": 1.0,
               "trainer": {"max_steps": 2, "per_device_train_batch_size": 8, "num_generations": 4,
                           "max_completion_length": 160, "max_tool_calling_iterations": 1, "temperature": 0.5,
                           "learning_rate": 1e-3, "save_steps": 100, "dataloader_num_workers": 0}},
    }
    (root / "calc.yaml").write_text(yaml.safe_dump(preset, sort_keys=False))
    rlr("tiny-model", "micro", "--size", "micro", "--max-positions", "1024", cwd=root)
    rlr("prepare-data", "calc.yaml", cwd=root)
    rlr("sft", "calc.yaml", cwd=root)
    return root


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_tool_calls_run_during_rollouts_and_their_replies_are_masked(tool_caller):
    from transformers import AutoTokenizer

    rlr("train-rl", "calc.yaml", cwd=tool_caller)
    rl = tool_caller / "runs" / "calc" / "rl"
    metrics = [m for m in _read(rl / "metrics.jsonl") if "tools/call_frequency" in m]
    assert len(metrics) == 2 and min(m["tools/call_frequency"] for m in metrics) >= 0.5
    assert all(m["tools/failure_frequency"] == 0 for m in metrics)

    samples = _read(rl / "samples.jsonl")
    step1 = [s for s in samples if s["step"] == 1]
    tool_rollouts = [s for s in step1 if "transcript" in s]
    assert tool_rollouts, "no rollout called a tool"
    for sample in tool_rollouts:  # the calculator really ran: its reply is the product the model asked for
        call, reply = sample["transcript"][0]["tool_calls"][0]["function"], sample["transcript"][1]
        assert call["name"] == "calculator" and reply["role"] == "tool"
        a, b = map(int, call["arguments"]["expression"].split("*"))
        assert reply["content"] == str(a * b)

    # Masked: TRL's completion lengths count the model's tokens only (tool_mask == 1). The tool replies' tokens,
    # rendered as the template does, are what the completions hold beyond that.
    tok = AutoTokenizer.from_pretrained(tool_caller / "micro")
    reply_tokens = []
    for sample in step1:
        turns = sample.get("transcript", [])
        replies = [t for t in turns if t["role"] == "tool"]
        if replies:
            call = {"role": "assistant", "content": "", "tool_calls": turns[0]["tool_calls"]}
            before = tok.apply_chat_template([{"role": "user", "content": "x"}, call], return_dict=False)
            after = tok.apply_chat_template([{"role": "user", "content": "x"}, call, *replies],
                                            add_generation_prompt=True, return_dict=False)
            reply_tokens.append(len(after) - len(before))
    assert min(reply_tokens) > 10  # `<|im_start|>user\n<tool_response>\n...` is never counted as the model's


def test_dynamic_sampling_and_whitening_work_on_tool_rollouts(tool_caller):
    """rlr's two extensions of TRL's generation hook merge and rescale batches: tool_mask must travel with them."""
    rlr("train-rl", "calc.yaml", "--overwrite", "rl.dynamic_sampling.enabled=true", "rl.dynamic_sampling.max_rounds=1",
        "rl.whiten_advantages=true", cwd=tool_caller)
    rl = tool_caller / "runs" / "calc" / "rl"
    metrics = [m for m in _read(rl / "metrics.jsonl") if "tools/call_frequency" in m]
    assert len(metrics) == 2 and all(m["tools/call_frequency"] > 0 for m in metrics)
    assert any("dynamic_sampling/extra_rounds" in m for m in _read(rl / "metrics.jsonl"))


def test_hostile_tools_score_their_rollout_and_never_stop_training(tool_caller):
    """The same model calls `calculator`, which is now a tool that hangs, raises, exits, floods, or runs a hanging
    program in the sandbox, call after call."""
    rlr("train-rl", "calc.yaml", "--overwrite", "rl.tools=[hostile.py:calculator]", cwd=tool_caller)
    rl = tool_caller / "runs" / "calc" / "rl"
    manifest = json.loads((rl / "manifest.json").read_text())
    assert manifest["status"] == "complete" and (rl / "model").is_dir()
    metrics = [m for m in _read(rl / "metrics.jsonl") if "tools/call_frequency" in m]
    assert len(metrics) == 2 and sum(m["tools/failure_frequency"] for m in metrics) > 0
    replies = [t["content"] for s in _read(rl / "samples.jsonl") for t in s.get("transcript", [])
               if t["role"] == "tool"]
    text = "\n".join(replies)
    for says in ("did not return within 1 s", "tool crashed", "SystemExit", "timed out"):
        assert says in text, (says, replies)
    assert max(map(len, replies)) < 2200  # the 10 MB reply was clipped before it reached the context
    assert all(isinstance(s["reward"], float) for s in _read(rl / "samples.jsonl"))  # every rollout was scored


@pytest.fixture(scope="module")
def guesser(tmp_path_factory) -> Path:
    """A preset on rl.environment guess_number whose SFT stage taught the micro model to open with guess(50)."""
    from rlr.envs.guess_number import generate_rows

    root = tmp_path_factory.mktemp("guess")
    with open(root / "guess.jsonl", "w") as f:
        for row in generate_rows(64, seed=0):  # the environment's own prompts and secrets, plus a first move
            call = json.dumps({"name": "guess", "arguments": {"number": 50}})
            f.write(json.dumps({**row, "solution": f"<tool_call>{call}</tool_call>"}) + "\n")
    preset = {
        "run": {"name": "guess", "output_dir": "runs", "seed": 0},
        "model": {"name_or_path": str(root / "micro")},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
        "template": {"system": "none", "answer_format": "none"},
        "data": {"train": {"source": "guess.jsonl", "solution": "solution", "task": "numeric"}, "dedup": "none"},
        "rewards": [{"name": "accuracy"}],
        "sft": {"use_lora": False, "trainer": {"max_steps": 150, "learning_rate": 1e-2,
                                               "per_device_train_batch_size": 16, "save_steps": 1000}},
        "rl": {"environment": "guess_number", "sample_log_every": 1,
               "trainer": {"max_steps": 2, "per_device_train_batch_size": 8, "num_generations": 4,
                           "max_completion_length": 200, "max_tool_calling_iterations": 2, "temperature": 0.3,
                           "learning_rate": 1e-3, "save_steps": 100, "dataloader_num_workers": 0}},
    }
    (root / "guess.yaml").write_text(yaml.safe_dump(preset, sort_keys=False))
    rlr("tiny-model", "micro", "--size", "micro", "--max-positions", "1024", cwd=root)
    rlr("prepare-data", "guess.yaml", cwd=root)
    rlr("sft", "guess.yaml", cwd=root)
    return root


def test_environment_episodes_run_its_tools_and_score_them_with_its_reward(guesser):
    rlr("train-rl", "guess.yaml", cwd=guesser)
    rl = guesser / "runs" / "guess" / "rl"
    metrics = [m for m in _read(rl / "metrics.jsonl") if "tools/call_frequency" in m]
    assert len(metrics) == 2 and max(m["tools/call_frequency"] for m in metrics) > 0
    assert all("rewards/GuessNumberEnv/mean" in m for m in metrics)  # get_reward() scored every episode
    replies = [t["content"] for s in _read(rl / "samples.jsonl") for t in s.get("transcript", [])
               if t["role"] == "tool"]
    assert replies and set(replies) <= {"higher", "lower", "correct"} | {r for r in replies if "error" in r}
    assert {"higher", "lower"} & set(replies)  # the secret lives in the environment: its replies carry it


@pytest.mark.parametrize("seed", [42])
def test_the_calculator_preset_lifts_held_out_success(seed, tmp_path):
    """presets/agentic/tiny-calculator.yaml end to end (issue 16's offline proof): SFT on calculator episodes, then
    GRPO in TRL's tool loop raises held-out sampled success by >= 15 points with the 95% intervals apart (measured
    on seeds 42, 1, 2 in BENCHMARKS.md; the wall time is measured there, not asserted here)."""
    repo = Path(__file__).resolve().parent.parent
    model = tmp_path / "tiny-model"
    made = subprocess.run([sys.executable, "-m", "rlr", "tiny-model", str(model)], env=ENV, capture_output=True,
                          text=True)
    assert made.returncode == 0, made.stderr[-2000:]
    out = subprocess.run([sys.executable, "-m", "rlr", "pipeline", "presets/agentic/tiny-calculator.yaml", "--json",
                          f"run.seed={seed}", f"run.output_dir={tmp_path}/runs", f"model.name_or_path={model}"],
                         env=ENV, capture_output=True, text=True, cwd=repo)
    assert out.returncode == 0, out.stderr[-2000:]
    assert_sampled_lift(json.loads(out.stdout), 0.15, f"calculator seed {seed}")
    samples = [json.loads(line) for line in (tmp_path / "runs/tiny-calculator/eval/rl/samples.jsonl").open()]
    correct = [s for s in samples if s["correct"]]
    assert correct and all(s["transcript"][0].get("tool_calls") for s in correct)  # every right answer used the tool
