"""The lineage that chains stages through the run directory.

Each training stage writes its final model to `<stage>/model/`: either full weights, or a LoRA adapter plus
`rlr_model.json` naming the base and any adapters underneath it (an RL LoRA trained on top of an SFT LoRA is a
stack of two). `ModelRef` is that lineage; every later stage (RL init, evaluate, export) loads through it, so
no path is copied by hand from one stage to the next.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlr.errors import UserError
from rlr.paths import stage_model_dir

LINEAGE_FILE = "rlr_model.json"
STAGE_NAMES = ("sft", "rl", "export")


@dataclass
class ModelRef:
    """A base model plus the LoRA adapters applied on top of it, in order."""

    base: str
    adapters: list[str] = field(default_factory=list)
    label: str = ""

    @property
    def is_adapter(self) -> bool:
        return bool(self.adapters)

    def as_dict(self) -> dict[str, Any]:
        return {"base": self.base, "adapters": self.adapters, "label": self.label}

    def tokenizer_source(self) -> str:
        """The newest directory of the lineage that ships a tokenizer (a stage may have changed its chat template)."""
        for path in reversed(self.adapters):
            if (Path(path) / "tokenizer_config.json").is_file():
                return path
        return self.base


def write_lineage(model_dir: Path, ref: ModelRef) -> None:
    from rlr.files import atomic_write_json

    atomic_write_json(Path(model_dir) / LINEAGE_FILE, ref.as_dict())


def ref_from_dir(path: Path, label: str = "") -> ModelRef:
    """Read what a model directory holds: full weights, or an adapter (with its lineage when rlr wrote it)."""
    path = Path(path)
    lineage = path / LINEAGE_FILE
    if lineage.is_file():
        data = json.loads(lineage.read_text())
        return ModelRef(base=data["base"], adapters=list(data.get("adapters", [])), label=label or str(path))
    adapter_cfg = path / "adapter_config.json"
    if adapter_cfg.is_file():
        base = json.loads(adapter_cfg.read_text()).get("base_model_name_or_path")
        if not base:
            raise UserError(f"{adapter_cfg} names no base_model_name_or_path; set it to the base model")
        return ModelRef(base=base, adapters=[str(path.resolve())], label=label or str(path))
    return ModelRef(base=str(path), label=label or str(path))


def resolve_model_ref(ref: str, cfg: Any) -> ModelRef:
    """`base`, a stage name of this run (sft, rl, export), or a model/adapter directory or hub id."""
    if ref == "base":
        return ModelRef(base=cfg.model.name_or_path, label="base")
    if ref in STAGE_NAMES:
        from rlr.runs import StageRun

        stage = StageRun.of(cfg, ref)
        if not stage.is_complete():
            raise UserError(f"stage '{ref}' of run '{cfg.run.name}' is not complete ({stage.path}); run "
                            f"`rlr {'train-rl' if ref == 'rl' else ref} <preset>` first or name a model path")
        return ref_from_dir(stage_model_dir(cfg, ref), label=ref)
    path = Path(ref)
    if path.exists():
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            raise UserError(f"{ref} is not a model directory (no config.json or adapter_config.json)")
        return ref_from_dir(path)
    if "/" in ref and not ref.startswith((".", "/")):
        return ModelRef(base=ref, label=ref)  # a hub id
    raise UserError(f"model '{ref}' not found: use base, sft, rl, export, a model directory or a hub id")


