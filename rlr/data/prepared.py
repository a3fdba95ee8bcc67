"""The prepared splits of a run (`runs/<name>/data/{train,eval}.jsonl`), as later stages read them.

One row schema for every source: `prompt` (chat messages, or a string when template.chat is false), `answer`
(ground-truth string), `solution` (worked solution or null), `task` (which verifier applies), `meta` (a JSON
string: heterogeneous per-source dicts would not fit one Arrow schema).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlr.errors import UserError

COLUMNS = ("prompt", "answer", "solution", "task", "meta")
SPLITS = ("train", "eval")


def data_dir(cfg: Any) -> Path:
    from rlr.paths import stage_dir

    return stage_dir(cfg, "data")


def split_path(cfg: Any, split: str) -> Path:
    return data_dir(cfg) / f"{split}.jsonl"


def require_prepared(cfg: Any) -> Path:
    from rlr.runs import StageRun

    stage = StageRun.of(cfg, "data")
    if not stage.is_complete():
        raise UserError(f"no prepared data for run '{cfg.run.name}' ({stage.path}); run `rlr prepare-data <preset>` "
                        "first (or `rlr pipeline <preset>`)")
    return stage.path


def read_rows(path: Path) -> list[dict[str, Any]]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def verified_split(cfg: Any, split: str) -> tuple[Path, str]:
    """(path, sha256) of a prepared split, checked against what prepare-data recorded: a later stage never trains
    on a file that was deleted, truncated or edited after the data manifest called it complete."""
    from rlr.files import file_sha256
    from rlr.runs import StageRun

    require_prepared(cfg)
    path = split_path(cfg, split)
    recorded = (StageRun.of(cfg, "data").manifest().get("outputs") or {}).get(path.name)
    if not path.is_file():
        if isinstance(recorded, dict):
            raise UserError(f"{path} is missing: prepare-data wrote it and it was moved or deleted since; rerun "
                            "`rlr prepare-data <preset> --overwrite`")
        raise UserError(f"run '{cfg.run.name}' has no {split} split ({path}); add data.{split} to the preset "
                        "and rerun `rlr prepare-data <preset> --overwrite`")
    actual = file_sha256(path)
    expected = recorded.get("sha256") if isinstance(recorded, dict) else None
    if expected and expected != actual:
        raise UserError(f"{path} changed since prepare-data wrote it (sha256 {actual[:12]}, manifest says "
                        f"{expected[:12]}); rerun `rlr prepare-data <preset> --overwrite` or restore the file")
    return path, actual


def load_split(cfg: Any, split: str) -> list[dict[str, Any]]:
    path, _ = verified_split(cfg, split)
    return read_rows(path)


def load_split_dataset(cfg: Any, split: str) -> Any:
    """The split as a `datasets.Dataset` (what TRL trainers take)."""
    from datasets import Dataset

    rows = load_split(cfg, split)
    return Dataset.from_list(rows)
