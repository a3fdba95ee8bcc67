"""The fault campaign kept as tests (issue 20): SIGKILL a real `rlr sft` / `rlr train-rl` / `rlr evaluate` process
mid-run, then rerun (with --resume for training): it ends at the same step with the same numbers as a run that was
never interrupted, and metrics.jsonl holds each step once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from rl_helpers import PARITY_REWARD

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}


def preset(tmp_path: Path, model: Path, name: str) -> Path:
    (tmp_path / "parity_reward.py").write_text(PARITY_REWARD)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "run": {"name": name, "output_dir": str(tmp_path / "runs"), "seed": 0},
        "model": {"name_or_path": str(model)},
        "template": {"system": "none", "answer_format": "none"},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.1},
        "data": {"train": {"source": "task:arithmetic", "rows": 256, "args": {"digits": 1}},
                 "eval": {"source": "task:arithmetic", "rows": 400, "args": {"digits": 2}}},
        "rewards": [{"name": "accuracy"}, {"name": "parity_reward.py:parity"}],
        "sft": {"use_lora": True, "trainer": {"max_steps": 12, "save_steps": 4, "per_device_train_batch_size": 8,
                                               "max_length": 64, "learning_rate": 1e-2}},
        "rl": {"init_from": "base", "trainer": {"max_steps": 12, "save_steps": 4, "per_device_train_batch_size": 8,
                                                "num_generations": 4, "max_completion_length": 8,
                                                "learning_rate": 5e-2, "dataloader_num_workers": 0}},
        "eval": {"benchmarks": ["eval"], "samples": 2, "k": [1, 2], "temperature": 1.0, "max_new_tokens": 24,
                 "batch_size": 4},
    }))
    return path


def rlr(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rlr", *args], env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def steps_logged(stage: Path) -> list[int]:
    path = stage / "metrics.jsonl"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if "loss" in record:
            out.append(record["step"])
    return out


def kill_when(proc: subprocess.Popen, ready, deadline_s: float = 300) -> None:
    deadline = time.time() + deadline_s
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)


@pytest.mark.parametrize(("command", "stage"), [("sft", "sft"), ("train-rl", "rl")])
def test_sigkill_mid_training_then_resume_ends_like_an_uninterrupted_run(command, stage, tmp_path, micro_model):
    straight, killed = preset(tmp_path, micro_model, "straight"), preset(tmp_path, micro_model, "killed")
    for p in (straight, killed):
        assert rlr("prepare-data", str(p)).returncode == 0
    done = rlr(command, str(straight), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    expected = json.loads(done.stdout)

    root = tmp_path / "runs/killed" / stage
    proc = subprocess.Popen([sys.executable, "-m", "rlr", command, str(killed)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_when(proc, lambda: (root / "checkpoint-4" / "trainer_state.json").is_file() and
              max(steps_logged(root), default=0) >= 6)  # past the checkpoint: steps 5-6 will be replayed
    assert json.loads((root / "manifest.json").read_text())["status"] == "running"  # what a kill leaves

    again = rlr(command, str(killed))
    assert again.returncode == 2 and "--resume" in again.stderr  # never silently over a killed run
    resumed = rlr(command, str(killed), "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    got = json.loads(resumed.stdout)
    assert got["steps"] == expected["steps"] == 12
    key = "final_loss" if stage == "sft" else "last_reward"
    assert got[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-6)
    assert steps_logged(root) == list(range(1, 13))  # each step once
    assert json.loads((root / "manifest.json").read_text())["status"] == "complete"


def test_sigkill_mid_evaluate_then_rerun_gives_the_uninterrupted_results(tmp_path, micro_model):
    straight, killed = preset(tmp_path, micro_model, "straight"), preset(tmp_path, micro_model, "killed")
    for p in (straight, killed):
        assert rlr("prepare-data", str(p)).returncode == 0
    assert rlr("evaluate", str(straight)).returncode == 0

    manifest = tmp_path / "runs/killed/eval/base/manifest.json"
    proc = subprocess.Popen([sys.executable, "-m", "rlr", "evaluate", str(killed)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_when(proc, lambda: manifest.is_file() and json.loads(manifest.read_text())["status"] == "running")
    refused = rlr("evaluate", str(killed))
    assert refused.returncode == 2 and "its process is gone" in refused.stderr and "--resume" in refused.stderr
    rerun = rlr("evaluate", str(killed), "--resume")
    assert rerun.returncode == 0, rerun.stderr[-2000:]

    def metrics(name: str) -> dict:
        results = json.loads((tmp_path / f"runs/{name}/eval/base/results.json").read_text())
        return {k: v for k, v in results["benchmarks"]["eval"].items() if k != "timing"}

    assert metrics("killed") == metrics("straight")
