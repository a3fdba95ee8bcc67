"""The TRL trainers rlr drives: one table `{name: (config class, trainer class)}`.

Adding a trainer type is one row here, the name in `RLSection.trainer_type`'s choices, and an algorithm bundle
that sets it (presets/algorithms/). Classes are named, not imported, so reading the table costs no TRL import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from rlr.errors import ConfigError

# name -> ("module:ConfigClass", "module:TrainerClass"); "sft" is the SFT stage's, the others rl.trainer_type's
TRAINERS: dict[str, tuple[str, str]] = {
    "sft": ("trl:SFTConfig", "trl:SFTTrainer"),
    "grpo": ("trl:GRPOConfig", "trl:GRPOTrainer"),
    "rloo": ("trl:RLOOConfig", "trl:RLOOTrainer"),
}


def _load(ref: str) -> type:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def config_class(name: str) -> type:
    return _load(TRAINERS[name][0])


def trainer_class(name: str) -> type:
    return _load(TRAINERS[name][1])


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
