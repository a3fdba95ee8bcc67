"""The TRL trainers rlr drives: one table `{name: Trainer(config class, trainer class, traits)}`.

Code elsewhere asks a row what its trainer can do (e.g. `supports_tools`) instead of naming trainer types, so adding
a trainer type is one row here, the name in `RLSection.trainer_type`'s choices, and an algorithm bundle
that sets it (presets/algorithms/). Classes are named, not imported, so reading the table costs no TRL import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, NamedTuple

from rlr.errors import ConfigError


class Trainer(NamedTuple):
    config: str  # "module:ConfigClass"
    trainer: str  # "module:TrainerClass"
    supports_tools: bool = False  # runs TRL's tool loop (rl.tools, rl.environment)


# "sft" is the SFT stage's trainer, the others rl.trainer_type's
TRAINERS: dict[str, Trainer] = {
    "sft": Trainer("trl:SFTConfig", "trl:SFTTrainer"),
    "grpo": Trainer("trl:GRPOConfig", "trl:GRPOTrainer", supports_tools=True),
    "rloo": Trainer("trl:RLOOConfig", "trl:RLOOTrainer"),
}


def tool_trainers() -> list[str]:
    """The rl.trainer_type values whose trainer can call tools."""
    return [name for name, row in TRAINERS.items() if row.supports_tools]


def _load(ref: str) -> type:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def config_class(name: str) -> type:
    return _load(TRAINERS[name].config)


def trainer_class(name: str) -> type:
    return _load(TRAINERS[name].trainer)


def build_config(name: str, section: str, loaded: Any, device: Any, kwargs_of: Callable[..., dict[str, Any]]) -> Any:
    """The TRL config object a stage trains with: `kwargs_of(loaded, device, problems)` (the stage's builder) checked,
    then TRL's own cross-field checks (batch divisibility, incompatible options); either's refusal becomes a
    ConfigError naming the preset section."""
    from rlr.config.coerce import Problems

    problems = Problems(loaded.origins)
    kwargs = kwargs_of(loaded, device, problems)
    if problems.items:
        raise ConfigError(problems.items)
    cls = config_class(name)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise ConfigError([f"{section}: trl.{cls.__name__} rejected the settings: {str(e).splitlines()[0]}"]) from e
