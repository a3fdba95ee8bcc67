"""Where things are: paths written in presets (relative to the current directory first, then to the preset's own
directory), and the one place that computes run paths (`runs/<name>/<stage>/`, a stage's `model/`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MODEL_SUBDIR = "model"


def resolve_data_path(ref: str, preset_dir: Path | None) -> Path | None:
    p = Path(ref).expanduser()
    if p.is_absolute():
        return p if p.exists() else None
    for base in (Path.cwd(), preset_dir):
        if base is not None and (base / p).exists():
            return (base / p).resolve()
    return None


def run_root(cfg: Any) -> Path:
    """runs/<name>/: every stage of one experiment lives under it."""
    return Path(cfg.run.output_dir) / cfg.run.name


def stage_dir(cfg: Any, stage: str) -> Path:
    """runs/<name>/<stage>/: the stage's config, manifest, metrics and outputs."""
    return run_root(cfg) / stage


def eval_dir(cfg: Any, label: str | None = None) -> Path:
    """runs/<name>/eval/ (the comparison of every evaluated model), or eval/<label>/ (one model's results)."""
    return stage_dir(cfg, "eval") / label if label else stage_dir(cfg, "eval")


def stage_model_dir(cfg: Any, stage: str) -> Path:
    """Where a stage's final model lives: <stage>/model/ (export writes the model at its stage root)."""
    return stage_dir(cfg, stage) / (MODEL_SUBDIR if stage != "export" else "")
