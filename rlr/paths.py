"""Where things are: paths written in presets (relative to the current directory first, then to the preset's own
directory), and the one place that computes run paths (`runs/<name>/<stage>/`, a stage's `model/`, its manifest).

Run paths are built here and nowhere else (tests/test_architecture.py checks it), so the layout of a run
directory, which users, `rlr report` and other runs' `--from` read, can only change in one place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MODEL_SUBDIR = "model"
DATA_STAGE = "data"
EVAL_STAGE = "eval"
# the files every stage directory holds (written by rlr.runs.StageRun)
MANIFEST_FILE = "manifest.json"
CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
RESULTS_FILE = "results.json"  # eval/<label>/: one model's results; eval/: the comparison of all of them


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


def stage_path(root: Path, stage: str) -> Path:
    """<root>/<stage>/ for a run known by its directory rather than its config (another run's, via --from)."""
    return Path(root) / stage


def stage_dir(cfg: Any, stage: str) -> Path:
    """runs/<name>/<stage>/: the stage's config, manifest, metrics and outputs."""
    return stage_path(run_root(cfg), stage)


def eval_stage(label: str) -> str:
    """eval/<label>: the stage of one evaluated model, nested under eval/ beside the comparison of all of them."""
    return f"{EVAL_STAGE}/{label}"


def eval_dir(cfg: Any, label: str | None = None) -> Path:
    """runs/<name>/eval/ (the comparison of every evaluated model), or eval/<label>/ (one model's results)."""
    return stage_dir(cfg, eval_stage(label) if label else EVAL_STAGE)


def stage_model_dir(cfg: Any, stage: str) -> Path:
    """Where a stage's final model lives: <stage>/model/ (export writes the model at its stage root)."""
    return stage_dir(cfg, stage) / (MODEL_SUBDIR if stage != "export" else "")


def manifest_path(stage_directory: Path) -> Path:
    return stage_directory / MANIFEST_FILE


def config_path(stage_directory: Path) -> Path:
    return stage_directory / CONFIG_FILE


def data_manifest_path(root: Path) -> Path:
    """runs/<name>/data/manifest.json: the hashes of the prepared files every later stage trained or scored on."""
    return manifest_path(stage_path(root, DATA_STAGE))


def comparison_path(root: Path) -> Path:
    """runs/<name>/eval/results.json: every evaluated model of the run side by side."""
    return stage_path(root, EVAL_STAGE) / RESULTS_FILE
