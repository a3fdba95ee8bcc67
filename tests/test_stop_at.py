"""`sft.stop_at`: SFT stops on a held-out metric computed by evaluate's code, not on a step count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def stop_at_preset(make_preset, model: Path, **stop_at) -> Path:
    """1-digit addition, answer only: the tiny model's greedy accuracy on 50 held-out problems passes 10% after
    about 90 full-parameter steps at lr 3e-3 (measured: 2-8% up to step 80, 16% at 90, 50% at 200)."""
    return make_preset(
        model,
        data={"train": {"source": "task:arithmetic", "rows": 2000, "args": {"digits": 1, "trace": False}},
              "eval": {"source": "task:arithmetic", "rows": 50, "args": {"digits": 1, "trace": False}}},
        template={"system": "none", "answer_format": "none", "chat": True},
        sft={"use_lora": False,
             "stop_at": {"metric": "greedy_accuracy", "value": 0.1, "every": 10, "problems": 50, **stop_at},
             "trainer": {"learning_rate": 3.0e-3, "max_steps": 300, "per_device_train_batch_size": 32,
                         "max_length": 32, "save_steps": 1000, "warmup_steps": 5}},
        eval={"benchmarks": ["eval"], "samples": 1, "k": [1], "temperature": 1.0, "max_new_tokens": 16,
              "batch_size": 64, "greedy": True},
    )


def test_sft_stops_when_the_metric_is_reached_and_evaluate_measures_the_same(cli, make_preset, tmp_path,
                                                                                tiny_model):
    preset = stop_at_preset(make_preset, tiny_model)
    assert cli("prepare-data", preset).code == 0
    r = cli("sft", preset, "--json")
    assert r.code == 0, r.stderr
    summary = json.loads(r.stdout)
    stop = summary["stop_at"]
    checks = [c["greedy_accuracy"] for c in stop["checks"]]
    # It stopped at the first check that reached the value, well before the 300-step cap.
    assert stop["reached_at_step"] == summary["steps"] == 10 * len(checks) < 300, stop
    assert len(checks) >= 2 and checks[-1] >= 0.1 and all(c < 0.1 for c in checks[:-1]), checks
    records = [json.loads(line) for line in (tmp_path / "runs/t/sft/metrics.jsonl").read_text().splitlines()]
    logged = {r["step"]: r["stop_at/greedy_accuracy"] for r in records if "stop_at/greedy_accuracy" in r}
    assert sorted(logged) == [c["step"] for c in stop["checks"]]

    # "Computed by the evaluate code": rlr evaluate on the saved model gives the very number the stop saw.
    r = cli("evaluate", preset, "--json")
    assert r.code == 0, r.stderr
    results = json.loads((tmp_path / "runs/t/eval/sft/results.json").read_text())
    assert results["benchmarks"]["eval"]["greedy_accuracy"] == pytest.approx(checks[-1], abs=1e-9)


@pytest.mark.parametrize(("override", "key"), [
    ("sft.stop_at.value=1.5", "sft.stop_at.value"),
    ("sft.stop_at.every=0", "sft.stop_at.every"),
    ("sft.stop_at.metric=loss", "sft.stop_at.metric"),
    ("data.eval=[]", "sft.stop_at"),
])
def test_bad_stop_at_exits_2_naming_the_key(override, key, cli, make_preset, tmp_path, micro_model):
    preset = stop_at_preset(make_preset, micro_model)
    r = cli("sft", preset, override)
    assert r.code == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and key in errors[0], r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "runs/t/sft").exists()


def test_the_stop_check_of_a_tool_preset_runs_tool_episodes(cli, make_preset, tmp_path, micro_model, monkeypatch):
    """With rl.tools the check measures what evaluate measures: whole episodes (call, reply, answer), not one turn."""
    from transformers import AutoModelForCausalLM

    from rlr.checks import load_experiment
    from rlr.evaluate import tool_rollout
    from rlr.train.stop_at import StopAtMetric

    task = {"source": "task:arithmetic", "args": {"digits": 3, "ops": ["*"], "tool": "calculator"}}
    preset = make_preset(micro_model, data={"train": {**task, "rows": 16}, "eval": {**task, "rows": 4}},
                         template={"system": "none", "answer_format": "none", "chat": True},
                         rl={"tools": ["calculator"]},
                         sft={"use_lora": False, "stop_at": {"metric": "sampled_accuracy", "value": 0.5, "every": 1,
                                                             "problems": 4, "samples": 2},
                              "trainer": {"max_steps": 1, "max_length": 192}},
                         eval={"benchmarks": ["eval"], "samples": 2, "k": [1], "max_new_tokens": 24})
    assert cli("prepare-data", preset).code == 0
    episodes: list[int] = []
    real_run = tool_rollout.ToolRollouts.run

    def counting_run(self, rows, settings, on_done=None):
        out = real_run(self, rows, settings, on_done)
        episodes.append(len(out))
        return out

    monkeypatch.setattr(tool_rollout.ToolRollouts, "run", counting_run)
    loaded = load_experiment(preset, stages=("sft",))
    stop = StopAtMetric(loaded.cfg.sft.stop_at, loaded, str(micro_model))
    value = stop.measure(AutoModelForCausalLM.from_pretrained(micro_model))
    assert episodes == [8] and 0.0 <= value <= 1.0  # 4 problems x 2 samples, each one episode
