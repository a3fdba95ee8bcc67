"""Shared fixtures: the offline tiny models (built once per session by `rlr.models.tiny`) and an in-process CLI."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def micro_model(tmp_path_factory) -> Path:
    """~50k-parameter model: for tests that only need a real model to run, not to learn."""
    from rlr.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "micro", size="micro", seed=0)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The ~1M-parameter quickstart model, exactly as `rlr tiny-model` builds it."""
    from rlr.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny", size="tiny", seed=0)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run `rlr ARGS...` in-process through the real entry point (exit codes and error handling included)."""

    def run(*args: Any, cwd: Path | None = None) -> CliResult:
        from rlr.cli import main

        if cwd is not None:
            monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", ["rlr", *map(str, args)])
        capsys.readouterr()
        code = 0
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    return run


def write_preset(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def make_preset(tmp_path):
    """A minimal valid experiment on a local model, written to tmp_path; keyword sections override it."""

    def make(model: Path | str = "some/model", name: str = "t", **sections: Any) -> Path:
        data: dict[str, Any] = {
            "run": {"name": name, "output_dir": str(tmp_path / "runs"), "seed": 0},
            "model": {"name_or_path": str(model)},
            "template": {"system": "none", "answer_format": "none"},
            "data": {"train": {"source": "task:arithmetic", "rows": 64, "args": {"digits": 1}},
                     "eval": {"source": "task:arithmetic", "rows": 16, "args": {"digits": 1}}},
            "rewards": [{"name": "accuracy"}],
        }
        for key, value in sections.items():
            data[key] = value
        return write_preset(tmp_path / f"{name}.yaml", data)

    return make
