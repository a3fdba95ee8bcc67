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
    return Path(cfg.run.output_dir) / cfg.run.name / "data"


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


def load_split(cfg: Any, split: str) -> list[dict[str, Any]]:
    require_prepared(cfg)
    path = split_path(cfg, split)
    if not path.is_file():
        raise UserError(f"run '{cfg.run.name}' has no {split} split ({path}); add data.{split} to the preset "
                        "and rerun `rlr prepare-data <preset> --overwrite`")
    return read_rows(path)


def load_split_dataset(cfg: Any, split: str) -> Any:
    """The split as a `datasets.Dataset` (what TRL trainers take)."""
    from datasets import Dataset

    rows = load_split(cfg, split)
    return Dataset.from_list(rows)
