"""Golden values: the loss and reward curves of a 10-step sft and rl run on the micro model, pinned.

A refactor, a default that moved or a TRL / transformers upgrade that changes numbers shows up here first (as in
torchtune's regression tests), instead of as a quickstart that quietly stops lifting. The values were recorded on
the project's CPU (torch 2.13.0+cpu, trl 1.16.0); regenerate them, after deciding a change is intended, with
`RLR_UPDATE_GOLDEN=1 make test` and commit tests/golden/values.json with a note on why they moved.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from rl_helpers import prepare, rl_preset

GOLDEN = Path(__file__).resolve().parent / "golden" / "values.json"
# Float rounding differs with the thread count (matmul reductions split differently): allow that, nothing more.
# Per key: relative to the key's own magnitude, so a curve of small numbers (GRPO's loss is ~3e-5) is checked as
# closely as one near 1 (a fixed abs_tol of 2e-4 let the whole GRPO loss curve pass unchecked). The floor is the
# resolution the curves are stored at: `_curve` rounds to 6 decimals.
REL_TOL, STORED_RESOLUTION = 1e-3, 1e-6


def _abs_tol(expected: list[float]) -> float:
    """A zero in a curve (DAPO's loss on a step without gradient) is compared at REL_TOL of the key's scale."""
    return max(STORED_RESOLUTION, REL_TOL * max((abs(e) for e in expected), default=0.0))


def _metrics(stage: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (stage / "metrics.jsonl").read_text().splitlines() if line.strip()]


def _curve(rows: list[dict[str, Any]], key: str) -> list[float]:
    return [round(float(r[key]), 6) for r in rows if isinstance(r.get(key), (int, float)) and "train_runtime" not in r]


def _check(name: str, observed: dict[str, list[float]]) -> None:
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if os.environ.get("RLR_UPDATE_GOLDEN") == "1":
        golden[name] = observed
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
        return
    assert name in golden, f"no golden values for {name}: run with RLR_UPDATE_GOLDEN=1 once"
    for key, expected in golden[name].items():
        got = observed.get(key, [])
        assert len(got) == len(expected), f"{name}/{key}: {len(got)} logged values, golden has {len(expected)}"
        abs_tol = _abs_tol(expected)
        for step, (g, e) in enumerate(zip(got, expected, strict=True), start=1):
            assert math.isclose(g, e, rel_tol=REL_TOL, abs_tol=abs_tol), \
                f"{name}/{key} moved at log {step}: {g} (golden {e}); see this file's docstring"


def _check_stage_contract(stage: Path, preset: Path) -> None:
    """sft and rl share one skeleton: the same summary keys, and the resolved config saved as config.yaml."""
    import yaml

    from rlr.config.coerce import to_dict
    from rlr.config.load import load_config
    from rlr.train.training_stage import SUMMARY_KEYS

    outputs = json.loads((stage / "manifest.json").read_text())["outputs"]
    assert set(SUMMARY_KEYS) <= set(outputs) and outputs["stage"] == stage.name, sorted(outputs)
    assert Path(outputs["model_dir"]) == (stage / "model").resolve()
    assert yaml.safe_load((stage / "config.yaml").read_text()) == to_dict(load_config(preset).cfg)


def test_sft_10_steps_matches_the_golden_losses(cli, make_preset, tmp_path, micro_model):
    preset = make_preset(micro_model, name="golden_sft",
                         sft={"use_lora": True, "trainer": {"learning_rate": 1e-2, "max_steps": 10, "logging_steps": 1,
                                                            "per_device_train_batch_size": 8, "max_length": 64,
                                                            "save_steps": 1000}},
                         lora={"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": "all-linear"})
    prepare(cli, preset)
    r = cli("sft", preset)
    assert r.code == 0, r.stderr
    rows = _metrics(tmp_path / "runs" / "golden_sft" / "sft")
    _check_stage_contract(tmp_path / "runs" / "golden_sft" / "sft", preset)
    _check("sft_lora_micro_10", {"loss": _curve(rows, "loss"), "grad_norm": _curve(rows, "grad_norm")})


@pytest.mark.parametrize("algorithm", ["grpo", "dapo"])
def test_rl_10_steps_matches_the_golden_loss_and_reward(algorithm, cli, tmp_path, micro_model):
    preset = rl_preset(tmp_path, micro_model, f"golden_{algorithm}", algorithm, sample_log_every=0,
                       trainer={"max_steps": 10, "logging_steps": 1, "learning_rate": 1e-2})
    prepare(cli, preset)
    r = cli("train-rl", preset)
    assert r.code == 0, r.stderr
    rows = _metrics(tmp_path / "runs" / f"golden_{algorithm}" / "rl")
    _check_stage_contract(tmp_path / "runs" / f"golden_{algorithm}" / "rl", preset)
    _check(f"rl_{algorithm}_micro_10", {"loss": _curve(rows, "loss"), "reward": _curve(rows, "reward"),
                                        "parity": _curve(rows, "rewards/parity_reward.py:parity/mean")})
