"""Shared by the RL tests: tiny presets on the micro model with a reward that has variance, and data preparation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# A reward with variance on an untrained model (so groups carry signal): parity of the completion's length.
PARITY_REWARD = '''
import os
import signal
from pathlib import Path


def parity(completions, **kwargs):
    """1.0 when the completion has an even number of characters; optionally sends SIGINT on the Nth call."""
    counter = os.environ.get("RLR_TEST_SIGINT_FILE")
    if counter:
        path = Path(counter)
        calls = int(path.read_text()) + 1 if path.exists() else 1
        path.write_text(str(calls))
        if calls == int(os.environ["RLR_TEST_SIGINT_AT"]):
            os.kill(os.getpid(), signal.SIGINT)
    return [float(len(c[0]["content"] if isinstance(c, list) else c) % 2 == 0) for c in completions]
'''


def prepare(cli, preset: Path) -> None:
    """`rlr prepare-data` for the preset (0.1 s for 64 procedural rows)."""
    result = cli("prepare-data", preset)
    assert result.code == 0, result.stderr


def rl_preset(tmp: Path, model: Path, name: str, algorithm: str, trainer: dict[str, Any] | None = None,
              rewards: list[dict[str, Any]] | None = None, **rl: Any) -> Path:
    (tmp / "parity_reward.py").write_text(PARITY_REWARD)
    data = {
        "run": {"name": name, "output_dir": str(tmp / "runs"), "seed": 0},
        "model": {"name_or_path": str(model)},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
        "template": {"system": "none", "answer_format": "none"},
        "data": {"train": {"source": "task:arithmetic", "rows": 64, "args": {"digits": 2}}},
        "rewards": rewards if rewards is not None else [{"name": "accuracy"}, {"name": "parity_reward.py:parity"}],
        "rl": {"algorithm": algorithm, "sample_log_every": 1,
               "trainer": {"max_steps": 2, "per_device_train_batch_size": 8, "num_generations": 4,
                           "max_completion_length": 8, "learning_rate": 5e-2, "save_steps": 100,
                           "dataloader_num_workers": 0, **(trainer or {})}, **rl},
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def assert_sampled_lift(summary: dict[str, Any], points: float, label: str) -> None:
    """A pipeline's --json summary shows held-out sampled accuracy up by >= `points` with the 95% intervals apart."""
    before, after = summary["before_rl"], summary["after_rl"]
    print(f"{label}: sampled {before['sampled']:.3f} {before['sampled_ci']} -> {after['sampled']:.3f} "
          f"{after['sampled_ci']}")
    assert after["sampled"] - before["sampled"] >= points
    assert after["sampled_ci"][0] > before["sampled_ci"][1]  # the intervals do not overlap
