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


def unconfigured_rl(loaded: LoadedConfig) -> str | None:
    """Why `rlr validate` leaves the rl stage out, or None when the preset configures it.

    The schema gives every preset an rl section (and the algorithm bundle fills it), so "configured" is read off
    what the preset itself says: a reward, an `rl:` section, or an rl step in a `pipeline.stages` it sets. An
    SFT-only preset says none of these, and demanding a reward of it would make it impossible to validate.
    """
    cfg = loaded.cfg
    if cfg.rewards or "rl" in loaded.sections or ("pipeline.stages" in loaded.origins and "rl" in cfg.pipeline.stages):
        return None
    reason = "rl stage not checked: the preset lists no rewards and has no rl section; `rlr train-rl` needs a reward"
    if "rl" in cfg.pipeline.stages:  # the default stages
        reason += (", and so does `rlr pipeline`, whose default stages include rl: for an SFT-only pipeline set "
                   "pipeline.stages, e.g. [data, sft, export]")
    return reason


def configured_stages(loaded: LoadedConfig) -> tuple[str, ...]:
    """The stages `rlr validate` checks: every one, rl only when the preset configures it."""
    return tuple(stage for stage in ALL_STAGES if stage != "rl" or unconfigured_rl(loaded) is None)


def check_configured_stages(loaded: LoadedConfig, problems: Any) -> None:
    """The checks of every stage the preset configures (what `rlr validate` runs), known once loaded."""
    for check in checks_for(configured_stages(loaded)):
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
    from rlr.trl_internals import check_trl_version

    if stages:  # a TRL outside the tested minor version: said before a training stage is run, not during it
        check_trl_version()
    device = resolve_device(loaded.cfg.model.dtype)
    trl: dict[str, Any] = {}
    for stage in stages:
        builder = TRL_CONFIGS[stage]
        trl[stage] = builder.trl_config_kwargs(loaded, device, Problems(loaded.origins))
        builder.build_trl_config(loaded, device)
    return {"device": device.as_dict(), "trl": trl}


def validate_configured(loaded: LoadedConfig) -> dict[str, Any]:
    """`validate_experiment` for the training stages the preset configures, with why any was left out."""
    report = validate_experiment(loaded, tuple(stage for stage in configured_stages(loaded) if stage in TRL_CONFIGS))
    if (reason := unconfigured_rl(loaded)) is not None:
        report["skipped"] = {"rl": reason}
    return report
