"""How rlr reads YAML: PyYAML's safe loader, with YAML 1.2's reading of exponent floats.

PyYAML follows YAML 1.1, where `2e-6` and `1e5` (no dot) are strings. Every learning rate in this field is written
that way, so a preset's `learning_rate: 2e-6` or an override `rl.trainer.learning_rate=2e-6` would reach the
resolved config (and config.yaml in the run dir) as text. Here they are floats, as in YAML 1.2 and in Python.
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class PresetLoader(yaml.SafeLoader):
    """SafeLoader + YAML 1.2 floats (`1e-6`, `2E5`); nothing else changes."""


PresetLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=PresetLoader)  # noqa: S506 - a SafeLoader subclass
