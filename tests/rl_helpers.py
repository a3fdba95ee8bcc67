"""Shared by the RL tests: a prepared data/ dir written directly (rlr/data/prepared.py's schema) and tiny presets."""

from __future__ import annotations

import json
import shutil
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


def arithmetic_rows(n: int, seed: int = 0, digits: int = 2) -> list[dict[str, Any]]:
    from rlr.tasks import get_task

    rows = get_task("arithmetic", digits=digits).generate(n, seed)
    return [{"prompt": [{"role": "user", "content": r["question"]}], "answer": r["answer"],
             "solution": r["solution"], "task": "arithmetic", "meta": json.dumps(r["meta"])} for r in rows]


def write_prepared(run_root: Path, rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]] | None = None) -> Path:
    """runs/<name>/data/ with train.jsonl (+ eval.jsonl) and a complete StageRun manifest."""
    from rlr.runs import StageRun

    stage = StageRun(run_root, "data").start(config={}, overwrite=True, resume=False)
    for split, split_rows in (("train", rows), ("eval", eval_rows or [])):
        if split_rows:
            with open(stage.path / f"{split}.jsonl", "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in split_rows)
    stage.finish("complete", outputs={"train_rows": len(rows)})
    return stage.path


def copy_prepared(src: Path, run_root: Path) -> None:
    shutil.copytree(src, run_root / "data", dirs_exist_ok=True)


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
