"""The shipped preset library: where it lives and how a preset name becomes a file."""

from __future__ import annotations

import os
from pathlib import Path

from rlr.errors import UserError


def presets_dir() -> Path:
    """The directory named by RLR_PRESETS, else the library a wheel ships as rlr/_presets, else presets/ of the
    source tree (a checkout or an editable install, where presets/ is edited in place)."""
    if env := os.environ.get("RLR_PRESETS"):
        if not Path(env).is_dir():
            raise UserError(f"RLR_PRESETS={env} is not a directory; point it at a preset library (a copy of "
                            "presets/, with algorithms/ and benchmarks/) or unset it")
        return Path(env)
    package = Path(__file__).resolve().parent
    installed = package / "_presets"
    if installed.is_dir():
        return installed
    return package.parent / "presets"


def list_presets() -> list[str]:
    root = presets_dir()
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))


def preset_summary(path: Path) -> str:
    """First comment line of a preset: every shipped preset starts with one saying what it is."""
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
        if line.strip():
            break
    return ""


def _files_in(directory: Path) -> str:
    found = sorted(str(p) for p in directory.glob("*.y*ml"))[:3]
    return f", e.g. {', '.join(found)}" if found else ""


def resolve_preset(ref: str, relative_to: Path | None = None) -> Path:
    """A preset reference: a path (absolute, relative to `relative_to` or the cwd) or a shipped name."""
    candidates = []
    p = Path(ref)
    if p.is_absolute():
        candidates.append(p)
    else:
        if relative_to is not None:
            candidates.append(relative_to / p)
        candidates.append(Path.cwd() / p)
        candidates.append(presets_dir() / p)
        if p.suffix not in (".yaml", ".yml"):
            candidates.append(presets_dir() / f"{ref}.yaml")
    for c in candidates:
        if c.is_file():
            return c.resolve()
    for c in candidates:
        if c.is_dir():
            raise UserError(f"{ref} is a directory, not a preset file; give a YAML file"
                            f"{_files_in(c)} (or a shipped name: `rlr presets list`)")
    from rlr.config.coerce import suggest

    hint = suggest(ref.removesuffix(".yaml"), list_presets())
    raise UserError(f"preset not found: {ref}{hint or '; see `rlr presets list` for the shipped ones'}")
