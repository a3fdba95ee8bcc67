"""What every stage command receives, and how the CLI finds a stage's implementation.

Stage modules import torch & co. at call time only: `rlr --help` must stay instant.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlr.errors import UserError

# command -> "module:function"; the function takes (LoadedConfig, StageOptions) and returns a summary dict.
STAGE_ENTRYPOINTS = {
    "prepare-data": "rlr.data.prepare:run_prepare",
    "sft": "rlr.train.sft:run_sft",
    "train-rl": "rlr.train.rl:run_rl",
    "evaluate": "rlr.evaluate.stage:run_evaluate",
    "export": "rlr.export.stage:run_export",
}
# command -> which TRL trainer sections it builds (what --dry-run shows and checks)
STAGE_TRAINERS = {"sft": ("sft",), "train-rl": ("rl",)}
# command -> the stages whose checks it runs before it starts (the checks themselves: rlr.checks.STAGE_CHECKS)
COMMAND_CHECKS = {"prepare-data": ("data",), "sft": ("sft",), "train-rl": ("rl",), "evaluate": ("eval",),
                "export": ("export",)}


@dataclass
class StageOptions:
    """The flags every stage command takes."""

    overwrite: bool = False
    resume: bool = False
    json: bool = False


@dataclass
class EvaluateOptions(StageOptions):
    models: list[str] = field(default_factory=list)  # --model: base, sft, rl, export or a path (default: the run's)
    limit: int | None = None  # --limit: the first N problems per benchmark (default: eval.limit)
    mins: list[str] = field(default_factory=list)  # --min benchmark.metric=value gates
    completions: Path | None = None  # --completions: score this JSONL instead of generating


@dataclass
class ExportOptions(StageOptions):
    from_stage: str | None = None  # --from: sft, rl or a model/adapter path (default: export.from_stage)
    out: Path | None = None  # --out: write here instead of runs/<name>/export/
    push_to_hub: str | None = None  # --push-to-hub: also push to this hub repo id


# command -> its options (commands not listed take the common flags only)
COMMAND_OPTIONS: dict[str, type[StageOptions]] = {"evaluate": EvaluateOptions, "export": ExportOptions}


def stage_options(command: str, **flags: Any) -> StageOptions:
    return COMMAND_OPTIONS.get(command, StageOptions)(**flags)


def stage_function(command: str) -> Callable[..., dict[str, Any]]:
    module_name, func_name = STAGE_ENTRYPOINTS[command].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and module_name.startswith(e.name):
            raise UserError(f"`rlr {command}` is not implemented yet in this version of rlr") from None
        raise
    return getattr(module, func_name)
