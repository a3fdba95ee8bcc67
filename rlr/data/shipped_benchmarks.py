"""The benchmarks rlr ships by name: `presets/benchmarks/<name>.yaml`, each a data source spec.

Here in data/ rather than in evaluate/ because both use them: `rlr evaluate` evaluates on them
(`rlr.evaluate.benchmarks`) and `rlr prepare-data` decontaminates train against them (`data.decontaminate`), and
data/ sits below evaluate/ (README, Architecture).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def benchmarks_dir() -> Path:
    from rlr.presets import presets_dir

    return presets_dir() / "benchmarks"


def shipped_benchmarks() -> list[str]:
    return sorted(p.stem for p in benchmarks_dir().glob("*.yaml"))


def shipped_benchmark_spec(name: str) -> dict[str, Any] | None:
    """The source spec (SourceSpec fields) of the shipped benchmark `name`; None when rlr ships none by that name."""
    path = benchmarks_dir() / f"{name}.yaml"
    if "/" in name or not path.is_file():
        return None
    return yaml.safe_load(path.read_text()) or {}
