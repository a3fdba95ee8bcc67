"""Which checks each stage runs before it starts, and what `rlr validate` / `--dry-run` print.

`rlr.config` turns YAML into a typed config and knows no stage; each stage owns its checks and its TRL config
(`rlr.data.checks`, `rlr.train.sft_config`, `rlr.train.rl_config`). This module is the one table joining them,
so a command's problems (schema and stage checks alike) are collected and reported together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlr.config.load import Check, LoadedConfig, load_config
from rlr.data.checks import check_sources
from rlr.train import rl_config, sft_config

# stage -> the checks it needs before it starts, in the order they report
STAGE_CHECKS: dict[str, tuple[Check, ...]] = {
    "data": (check_sources,),
    "sft": (check_sources, sft_config.check),
    "rl": (check_sources, rl_config.check_reward_specs, rl_config.check),
    # evaluate scores with the rewards' verifier settings (math-verify's precision, ...): a bad arg is bad input
    "eval": (check_sources, rl_config.check_reward_specs),
    "export": (),
}
ALL_STAGES = tuple(STAGE_CHECKS)
# training stage -> its TRL config builder (`rlr validate` shows and builds each)
TRL_CONFIGS = {"sft": sft_config, "rl": rl_config}


# `pipeline.stages` step -> the stage whose checks it needs
PIPELINE_STEPS = {"data": "data", "sft": "sft", "eval_before": "eval", "rl": "rl", "eval_after": "eval",
                  "export": "export"}


def check_pipeline_steps(loaded: LoadedConfig, problems: Any) -> None:
    """The checks of the steps `pipeline.stages` runs (an sft-only pipeline needs no reward), known once loaded."""
    steps = tuple(PIPELINE_STEPS[step] for step in loaded.cfg.pipeline.stages if step in PIPELINE_STEPS)
    for check in checks_for(steps):
        check(loaded, problems)


def checks_for(stages: tuple[str, ...]) -> list[Check]:
    out: list[Check] = []
    for stage in stages:
        out += [check for check in STAGE_CHECKS[stage] if check not in out]
    return out


def load_experiment(preset: str | Path, overrides: list[str] | None = None,
                    stages: tuple[str, ...] = ()) -> LoadedConfig:
    """`load_config` plus the checks the given stages need; every problem is raised together as one ConfigError."""
    return load_config(preset, overrides, checks=checks_for(stages))


def validate_experiment(loaded: LoadedConfig, stages: tuple[str, ...] = ("sft", "rl")) -> dict[str, Any]:
    """What `rlr validate` prints: device and TRL configs per stage; TRL's own cross-field checks run too."""
    from rlr.config.coerce import Problems
    from rlr.device import resolve_device

    device = resolve_device(loaded.cfg.model.dtype)
    trl: dict[str, Any] = {}
    for stage in stages:
        builder = TRL_CONFIGS[stage]
        trl[stage] = builder.trl_config_kwargs(loaded, device, Problems(loaded.origins))
        builder.build_trl_config(loaded, device)
    return {"device": device.as_dict(), "trl": trl}
