"""Two-process data parallel on CPU (gloo) through `accelerate launch`: SFT and GRPO on the micro model.

The real launcher runs in a subprocess, as a user would run it; both ranks must step together, only rank 0 writes
the run directory, and the result loads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, write_preset


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, micro_model):
    root = tmp_path_factory.mktemp("ddp")
    preset = write_preset(root / "p.yaml", {
        "run": {"name": "ddp", "output_dir": str(root / "runs"), "seed": 0},
        "model": {"name_or_path": str(micro_model)},
        "template": {"system": "none", "answer_format": "none"},
        "data": {"train": {"source": "task:arithmetic", "rows": 256, "args": {"digits": 1}}},
        "rewards": [{"name": "accuracy"}],
        "sft": {"use_lora": False, "trainer": {"learning_rate": 1e-3, "max_steps": 6, "per_device_train_batch_size": 8,
                                               "max_length": 48, "save_steps": 3}},
        "rl": {"trainer": {"learning_rate": 1e-4, "max_steps": 3, "per_device_train_batch_size": 4,
                           "num_generations": 4, "max_completion_length": 8, "save_steps": 3}},
    })
    rlr(preset, "prepare-data")
    return root, preset


def rlr(preset, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "rlr", args[0], str(preset), *args[1:]], capture_output=True,
                         text=True, cwd=REPO, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.mark.parametrize("command,stage", [("sft", "sft"), ("train-rl", "rl")])
def test_two_process_data_parallel(prepared, command, stage):
    root, preset = prepared
    out = rlr(preset, command, "--num-processes", "2", "--json")
    summaries = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1, "only rank 0 prints the summary"
    stage_dir = root / "runs" / "ddp" / stage
    manifest = json.loads((stage_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["attempts"] == 1
    assert manifest["command"].startswith(f"rlr {command} ")  # as retyped, not accelerate's `__main__.py`
    steps = [json.loads(line)["step"] for line in (stage_dir / "metrics.jsonl").read_text().splitlines()]
    max_steps = 6 if stage == "sft" else 3
    assert sorted(set(steps)) == list(range(1, max_steps + 1)), "ranks stepped together to max_steps, logged once"
    assert summaries[0]["steps"] == max_steps

    from rlr.models.loading import load_model_ref
    from rlr.models.references import ref_from_dir

    if stage == "sft":
        from transformers import AutoModelForCausalLM

        AutoModelForCausalLM.from_pretrained(stage_dir / "model")
    else:
        from rlr.config.load import load_config
        from rlr.device import resolve_device

        cfg = load_config(preset).cfg
        load_model_ref(ref_from_dir(stage_dir / "model"), cfg.model, resolve_device())


def test_two_process_grpo_with_dynamic_sampling(prepared):
    """Dynamic sampling across ranks: 3 groups of 2 per generation batch, the middle one split over the two ranks.
    Both ranks take the same keep/resample decisions (a mismatch would hang TRL's gathers), and every trained batch
    is full of informative groups."""
    from tests.rl_helpers import PARITY_REWARD

    root, preset = prepared
    (root / "parity_reward.py").write_text(PARITY_REWARD)
    rlr(preset, "prepare-data", "run.name=ddp_ds")
    out = rlr(preset, "train-rl", "--num-processes", "2", "--json", "run.name=ddp_ds",
              f"rewards.0.name={root / 'parity_reward.py'}:parity",
              "rl.dynamic_sampling.enabled=true", "rl.dynamic_sampling.max_rounds=8",
              "rl.trainer.num_generations=2", "rl.trainer.per_device_train_batch_size=3")
    assert len([line for line in out.stdout.splitlines() if line.startswith("{")]) == 1
    stage_dir = root / "runs" / "ddp_ds" / "rl"
    metrics = [json.loads(line) for line in (stage_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [m for m in metrics if "loss" in m]
    assert [m["step"] for m in steps] == [1, 2, 3]
    assert all(m["dynamic_sampling/zero_std_frac_after"] == 0 for m in steps)
    assert any(m["dynamic_sampling/zero_std_frac_before"] > 0 for m in steps)  # there was something to drop
