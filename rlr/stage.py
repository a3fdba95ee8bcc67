"""What every stage command receives, and how the CLI finds a stage's implementation.

Stage modules import torch & co. at call time only: `rlr --help` must stay instant.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
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
# command -> the config checks it needs before it starts (see rlr.config.validate.run_checks)
STAGE_CHECKS = {"prepare-data": ("data",), "sft": ("sft",), "train-rl": ("rl",), "evaluate": ("eval",),
                "export": ("export",)}


@dataclass
class StageOptions:
    overwrite: bool = False
    resume: bool = False
    json: bool = False
    debug: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # command-specific flags (--model, --min, --from ...)


def stage_function(command: str) -> Callable[..., dict[str, Any]]:
    module_name, func_name = STAGE_ENTRYPOINTS[command].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and module_name.startswith(e.name):
            raise UserError(f"`rlr {command}` is not implemented yet in this version of rlr") from None
        raise
    return getattr(module, func_name)
