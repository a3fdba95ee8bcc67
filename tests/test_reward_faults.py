"""A user reward that hangs, raises, returns garbage or floods stdout: `rlr train-rl` says so and never hangs
(issue 21). Each case runs the real command on the micro model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rl_helpers import prepare, rl_preset

REPO = Path(__file__).resolve().parent.parent

BAD_REWARDS = '''
import sys, time

def hangs(completions, **kwargs):
    time.sleep(3600)

def nan(completions, **kwargs):
    return [float("nan")] * len(completions)

def inf(completions, **kwargs):
    return [float("inf")] * len(completions)

def none(completions, **kwargs):
    return [None] * len(completions)

def strings(completions, **kwargs):
    return ["good"] * len(completions)

def short(completions, **kwargs):
    return [1.0]

def raises(completions, **kwargs):
    raise RuntimeError("the grader is down")

def flood(completions, **kwargs):
    sys.stdout.write("x" * 3_000_000)
    return [float(len(c[0]["content"] if isinstance(c, list) else c) % 2 == 0) for c in completions]
'''


def bad_preset(tmp_path: Path, model: Path, func: str, **spec) -> Path:
    (tmp_path / "bad_rewards.py").write_text(BAD_REWARDS)
    rewards = [{"name": "parity_reward.py:parity"}, {"name": f"bad_rewards.py:{func}", **spec}]
    return rl_preset(tmp_path, model, func, "grpo", rewards=rewards, trainer={"max_steps": 4, "save_steps": 2})


@pytest.mark.parametrize(("func", "expected"), [
    ("nan", "returned nan for completion 0"),
    ("inf", "returned inf for completion 0"),
    ("strings", "returned str 'good' for completion 0"),
    ("short", "returned 1 values for 8 completions"),
    ("none", "returned None for every completion in 3 batches in a row"),
])
def test_a_reward_returning_what_training_cannot_use_stops_the_run_naming_it(func, expected, cli, tmp_path,
                                                                              micro_model):
    preset = bad_preset(tmp_path, micro_model, func)
    prepare(cli, preset)
    r = cli("train-rl", preset)
    assert r.code == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"reward 'bad_rewards.py:{func}' {expected}" in errors[0], r.stderr
    assert "Traceback" not in r.stderr
    manifest = json.loads((tmp_path / f"runs/{func}/rl/manifest.json").read_text())
    assert manifest["status"] == "failed"


def test_a_hanging_reward_scores_its_batch_0_then_stops_the_run(cli, tmp_path, micro_model):
    preset = bad_preset(tmp_path, micro_model, "hangs", timeout_s=0.5)
    prepare(cli, preset)
    r = cli("train-rl", preset)
    assert r.code == 2, r.stderr
    assert r.stderr.count("took longer than 0.5 s; this batch of 8 scores 0.0") == 2, r.stderr
    assert "reward 'bad_rewards.py:hangs' took longer than 0.5 s, 3 calls in a row; raise its timeout_s" in r.stderr
    root = tmp_path / "runs/hangs/rl"
    assert json.loads((root / "manifest.json").read_text())["status"] == "failed"
    assert not (root / ".lock").exists()
    logged = [m for m in map(json.loads, (root / "metrics.jsonl").read_text().splitlines())
              if "bad_rewards.py:hangs/failed_frac" in m]
    assert [m["bad_rewards.py:hangs/failed_frac"] for m in logged] == [1.0, 1.0]


def test_a_raising_reward_is_scored_and_logged_until_it_keeps_failing(cli, tmp_path, micro_model):
    preset = bad_preset(tmp_path, micro_model, "raises")
    prepare(cli, preset)
    r = cli("train-rl", preset)
    assert r.code == 2 and "raised RuntimeError: the grader is down, 3 calls in a row; fix the reward" in r.stderr


def test_a_reward_printing_megabytes_keeps_the_json_stdout_clean(tmp_path, micro_model):
    preset = bad_preset(tmp_path, micro_model, "flood")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    for command in (["prepare-data", str(preset)], ["train-rl", str(preset), "--json"]):
        out = subprocess.run([sys.executable, "-m", "rlr", *command], capture_output=True, text=True, env=env,
                             cwd=tmp_path, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout)  # stdout is the summary and nothing else
    assert summary["steps"] == 4
    assert "more characters dropped" in out.stderr and len(out.stderr) < 200_000
