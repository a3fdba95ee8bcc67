"""What the rl stage checks before it starts, and the trl.GRPOConfig / RLOOConfig it trains with.

rlr-level settings become TRL's here: each reward's `weight` becomes `reward_weights` (plus the overlong reward
that `rl.overlong_buffer` adds), and `rl.updates_per_generation` becomes `steps_per_generation`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rlr.config.coerce import Problems
from rlr.config.trainer import build_trainer_kwargs, check_trainer_section
from rlr.paths import stage_dir
from rlr.train.trainers import build_config, config_class


def check_rewards(loaded: Any, problems: Problems) -> None:
    if not loaded.cfg.rewards:
        problems.add("rewards", "train-rl needs at least one reward, e.g. rewards: [{name: math_accuracy}] "
                     "(`rlr rewards list` shows the built-ins)")
        return
    # each reward's own args: check_reward_specs, run for this stage by rlr.checks (evaluate runs it too)


def check_reward_specs(loaded: Any, problems: Problems) -> None:
    """Each listed reward builds with its args (none listed is fine here: evaluate scores without them)."""
    from rlr.rewards.registry import reward_spec_problems, with_length_defaults

    if not loaded.cfg.rewards:
        return
    budget = loaded.cfg.rl.trainer.get("max_completion_length") or 256  # TRL's default
    for key, message in reward_spec_problems(with_length_defaults(loaded.cfg.rewards, int(budget)), loaded.base_dir):
        problems.add(key, message)


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


def check_dynamic_sampling(loaded: Any, problems: Problems) -> None:
    """RLOOTrainer folds the KL penalty into the reward (beta * KL per sequence) before the baseline: once the policy
    moves, no group has equal rewards, so dynamic sampling would silently never drop anything."""
    rl = loaded.cfg.rl
    if not rl.dynamic_sampling.enabled or rl.trainer_type != "rloo":
        return
    beta = rl.trainer.get("beta")
    if beta is None:
        beta = next(f.default for f in dataclasses.fields(config_class("rloo")) if f.name == "beta")
    if float(beta) > 0:
        problems.add("rl.dynamic_sampling.enabled", f"with rloo and rl.trainer.beta={beta}, RLOOTrainer adds the KL "
                     "penalty to the reward, so groups never have equal rewards and nothing would be filtered; set "
                     "rl.trainer.beta=0 or rl.dynamic_sampling.enabled=false")


def trl_config_kwargs(loaded: Any, device: Any, problems: Problems) -> dict[str, Any]:
    """The TRL config's keyword arguments: rlr defaults < algorithm bundle and rl.trainer < what rlr owns."""
    cfg = loaded.cfg
    cls = config_class(cfg.rl.trainer_type)
    values = check_trainer_section("rl.trainer", cfg.rl.trainer, cls, problems)
    weights = reward_weights(cfg)
    extra = {"reward_weights": weights} if weights else {}
    extra.update(off_policy_steps(cfg, values, problems))
    return build_trainer_kwargs(
        stage="rl", trainer_values=values, cls=cls, output_dir=str(stage_dir(cfg, "rl")), seed=cfg.run.seed,
        run_name=f"{cfg.run.name}-rl", device_flags=device.trainer_flags(), on_cpu=device.use_cpu, extra=extra,
    )


def check(loaded: Any, problems: Problems) -> None:
    from rlr.device import resolve_device

    check_rewards(loaded, problems)
    check_dynamic_sampling(loaded, problems)
    from rlr.train.agentic import check_agentic  # rl.tools / rl.environment

    check_agentic(loaded, problems)
    trl_config_kwargs(loaded, resolve_device(loaded.cfg.model.dtype), problems)


def build_trl_config(loaded: Any, device: Any) -> Any:
    """The TRL config the stage trains with (raises ConfigError on a bad section or a combination TRL rejects)."""
    return build_config(loaded.cfg.rl.trainer_type, "rl.trainer", loaded, device, trl_config_kwargs)
