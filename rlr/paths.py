"""Paths written in presets: relative to the current directory first, then to the preset's own directory."""

from __future__ import annotations

from pathlib import Path


def resolve_data_path(ref: str, preset_dir: Path | None) -> Path | None:
    p = Path(ref).expanduser()
    if p.is_absolute():
        return p if p.exists() else None
    for base in (Path.cwd(), preset_dir):
        if base is not None and (base / p).exists():
            return (base / p).resolve()
    return None
