"""Whole-experiment checks that need more than the schema: TRL trainer sections, rewards, data sources.

`rlr validate` runs all of them; a stage runs the ones it needs. Every problem is collected, then raised once.
"""

from __future__ import annotations

import re
from typing import Any

from rlr.config.coerce import Problems
from rlr.config.load import LoadedConfig
from rlr.config.trainer import build_trainer_kwargs, check_trainer_section, trainer_class
from rlr.errors import ConfigError
from rlr.paths import stage_dir

SOURCE_PREFIXES = ("hf:", "task:", "gym:")


def _task_problem_key(name: str, args: dict[str, Any], item: str) -> str:
    """`item.args.<knob>` when the task exists and a knob is wrong, else `item.source` (the name is)."""
    from rlr.tasks import get_task

    try:
        get_task(name)
    except Exception:
        return f"{item}.source"
    for knob, value in args.items():
        try:
            get_task(name, **{knob: value})
        except Exception:
            return f"{item}.args.{knob}"
    return f"{item}.args"


def check_sources(loaded: LoadedConfig, problems: Problems) -> None:
    from rlr.paths import resolve_data_path

    data = loaded.cfg.data
    for section, sources in (("train", data.train), ("eval", data.eval)):
        for i, src in enumerate(sources):
            key = f"data.{section}[{i}].source"
            s = src.source
            if not s or s.startswith(("hf:", "gym:", "env:")):  # env: is checked with rl.environment
                continue
            if s.startswith("task:"):
                try:
                    from rlr.tasks import get_task
                except ImportError:
                    continue
                name = s.removeprefix("task:")
                try:
                    get_task(name, **src.args)
                except Exception as e:  # UserError from the task registry names the knob and the fix
                    problems.add(_task_problem_key(name, src.args, f"data.{section}[{i}]"), str(e))
                continue
            if resolve_data_path(s, loaded.base_dir) is None:
                problems.add(key, f"no such file '{s}'; give a .jsonl/.json/.parquet/.csv path, hf:<dataset id>, "
                                  "task:<name> or gym:<name>")


def check_rewards(loaded: LoadedConfig, problems: Problems) -> None:
    try:
        from rlr.rewards.registry import validate_reward_specs
    except ImportError:
        return
    from rlr.rewards.registry import with_length_defaults

    if not loaded.cfg.rewards:
        problems.add("rewards", "train-rl needs at least one reward, e.g. rewards: [{name: math_accuracy}] "
                     "(`rlr rewards list` shows the built-ins)")
        return
    budget = loaded.cfg.rl.trainer.get("max_completion_length") or 256  # TRL's default
    for message in validate_reward_specs(with_length_defaults(loaded.cfg.rewards, int(budget)), loaded.base_dir):
        key = re.match(r"rewards\[\d+\](\.\w+)+", message)  # every message starts with its key, `rewards[i].field`
        problems.items.append(message + (problems.where(key.group(0)) if key else ""))


def adds_overlong_reward(cfg: Any) -> bool:
    """rl.overlong_buffer appends DAPO's overlong reward, unless the preset lists one (no double penalty)."""
    return bool(cfg.rl.overlong_buffer) and not any(r.name == "overlong" for r in cfg.rewards)


def reward_weights(cfg: Any) -> list[float]:
    """TRL's reward_weights, one per reward function the run trains with (the added overlong one included)."""
    weights = [float(1.0 if r.weight is None else r.weight) for r in cfg.rewards]
    return [*weights, 1.0] if adds_overlong_reward(cfg) else weights


def off_policy_steps(cfg: Any, trainer_values: dict[str, Any], problems: Problems) -> dict[str, Any]:
    """rl.updates_per_generation as TRL's steps_per_generation (micro-batches per generation batch).

    TRL generates once per `steps_per_generation` micro-batches; by default that is one optimiser step, so the
    importance ratio is exactly 1 and clip ranges (DAPO's clip-higher, GSPO's sequence clip, CISPO's IS cap,
    SAPO's gate) never act. k optimiser steps per generation makes the policy move between mini-batches, as in
    the papers.
    """
    k = cfg.rl.updates_per_generation
    if k < 1:
        problems.add("rl.updates_per_generation", f"must be >= 1, got {k}")
        return {}
    if k == 1:
        return {}
    taken = [key for key in ("steps_per_generation", "generation_batch_size") if trainer_values.get(key)]
    if taken:
        problems.add("rl.updates_per_generation", f"{k} sets trl's steps_per_generation, and rl.trainer.{taken[0]} is "
                     "set too; keep one of them")
        return {}
    return {"steps_per_generation": k * int(trainer_values.get("gradient_accumulation_steps") or 1)}


def trl_config_kwargs(loaded: LoadedConfig, stage: str, device_flags: dict[str, Any], on_cpu: bool,
                      problems: Problems) -> dict[str, Any]:
    cfg = loaded.cfg
    if stage == "sft":
        cls = trainer_class("sft")
        values = check_trainer_section("sft.trainer", cfg.sft.trainer, cls, problems)
        extra = {"completion_only_loss": cfg.sft.completion_only_loss}
    else:
        cls = trainer_class("rl", cfg.rl.trainer_type)
        values = check_trainer_section("rl.trainer", cfg.rl.trainer, cls, problems)
        weights = reward_weights(cfg)
        extra = {"reward_weights": weights} if weights else {}
        extra.update(off_policy_steps(cfg, values, problems))
    return build_trainer_kwargs(
        stage=stage, trainer_values=values, cls=cls, output_dir=str(stage_dir(cfg, stage)),
        seed=cfg.run.seed, run_name=f"{cfg.run.name}-{stage}", device_flags=device_flags, on_cpu=on_cpu,
        extra=extra,
    )


def build_trl_config(loaded: LoadedConfig, stage: str, device_flags: dict[str, Any], on_cpu: bool,
                     overrides: dict[str, Any] | None = None) -> Any:
    """The TRL config object a stage trains with (raises ConfigError when TRL rejects a combination)."""
    problems = Problems(loaded.origins)
    kwargs = trl_config_kwargs(loaded, stage, device_flags, on_cpu, problems)
    kwargs.update(overrides or {})
    if problems.items:
        raise ConfigError(problems.items)
    section = "sft.trainer" if stage == "sft" else "rl.trainer"
    cls = trainer_class(stage, loaded.cfg.rl.trainer_type)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        # TRL's own __post_init__ checks (batch divisibility, incompatible options): name the section.
        raise ConfigError([f"{section}: trl.{cls.__name__} rejected the settings: {str(e).splitlines()[0]}"]) from e


def check_dynamic_sampling(loaded: LoadedConfig, problems: Problems) -> None:
    """RLOOTrainer folds the KL penalty into the reward (beta * KL per sequence) before the baseline: once the policy
    moves, no group has equal rewards, so dynamic sampling would silently never drop anything."""
    rl = loaded.cfg.rl
    if not rl.dynamic_sampling.enabled or rl.trainer_type != "rloo":
        return
    beta = rl.trainer.get("beta")
    if beta is None:
        import dataclasses

        beta = next(f.default for f in dataclasses.fields(trainer_class("rl", "rloo")) if f.name == "beta")
    if float(beta) > 0:
        problems.add("rl.dynamic_sampling.enabled", f"with rloo and rl.trainer.beta={beta}, RLOOTrainer adds the KL "
                     "penalty to the reward, so groups never have equal rewards and nothing would be filtered; set "
                     "rl.trainer.beta=0 or rl.dynamic_sampling.enabled=false")


def check_stop_at(loaded: LoadedConfig, problems: Problems) -> None:
    """sft.stop_at: a reachable value, positive counts, and held-out problems to measure on."""
    cfg = loaded.cfg
    spec = cfg.sft.stop_at
    if spec.value is None:
        return
    if not 0 < spec.value <= 1:
        problems.add("sft.stop_at.value", f"{spec.value} is not an accuracy; give a value in (0, 1], e.g. 0.4")
    for key in ("every", "problems", "samples"):
        if getattr(spec, key) < 1:
            problems.add(f"sft.stop_at.{key}", f"{getattr(spec, key)} must be a positive integer")
    if spec.start < 0:
        problems.add("sft.stop_at.start", f"{spec.start} must be >= 0")
    if not cfg.data.eval and not cfg.data.eval_holdout:
        problems.add("sft.stop_at", "measures on the run's eval split, and this preset has none; add data.eval "
                     "(or data.eval_holdout), or set sft.stop_at.value=null")


def run_checks(loaded: LoadedConfig, stages: tuple[str, ...], problems: Problems) -> None:
    """Checks beyond the schema, for the stages about to run; problems are appended, not raised."""
    from rlr.device import resolve_device

    if {"data", "sft", "rl", "eval"} & set(stages):
        check_sources(loaded, problems)
    if "sft" in stages:
        check_stop_at(loaded, problems)
    if "rl" in stages:
        check_rewards(loaded, problems)
        check_dynamic_sampling(loaded, problems)
        from rlr.tools.agentic import check_agentic

        check_agentic(loaded, problems)
    device = resolve_device(loaded.cfg.model.dtype)
    for stage in ("sft", "rl"):
        if stage in stages:
            trl_config_kwargs(loaded, stage, device.trainer_flags(), device.use_cpu, problems)


def validate_experiment(loaded: LoadedConfig, stages: tuple[str, ...] = ("sft", "rl")) -> dict[str, Any]:
    """What `rlr validate` prints: device and TRL configs per stage; TRL's own cross-field checks run too."""
    from rlr.device import resolve_device

    device = resolve_device(loaded.cfg.model.dtype)
    trl: dict[str, Any] = {}
    for stage in stages:
        problems = Problems(loaded.origins)
        trl[stage] = trl_config_kwargs(loaded, stage, device.trainer_flags(), device.use_cpu, problems)
        build_trl_config(loaded, stage, device.trainer_flags(), device.use_cpu)
    return {"device": device.as_dict(), "trl": trl}
