"""The config check of `rl.tools` / `rl.environment`: tools load with a schema, the trainer can carry them.

Here, not in rlr/envs/rollout_tools.py (what a rollout runs with), because it asks the trainer table whether the
trainer runs TRL's tool loop, and the trainer table belongs to the train layer.
"""

from __future__ import annotations

from typing import Any

from rlr.config.coerce import Problems
from rlr.config.load import LoadedConfig
from rlr.envs.rollout_tools import env_of_sources
from rlr.errors import UserError
from rlr.train.trainers import TRAINERS, tool_trainers


def check_agentic(loaded: LoadedConfig, problems: Problems) -> None:
    """Config-load checks: every tool loads and has a schema TRL can build; the trainer and prompts can carry them."""
    from rlr.tools.registry import tool_problems

    cfg = loaded.cfg
    for section, sources in (("train", cfg.data.train), ("eval", cfg.data.eval)):
        for i, src in enumerate(sources):
            if src.source.startswith("env:"):
                _check_env_source(src.source, cfg, problems, f"data.{section}[{i}]")
    key = "rl.tools" if cfg.rl.tools else "rl.environment"
    environment = cfg.rl.environment or env_of_sources(cfg)
    if not cfg.rl.tools and not environment:
        return
    for k, message in tool_problems(cfg.rl.tools, loaded.base_dir):
        problems.add(k, message)
    if environment:
        from rlr.envs.registry import check_environment

        try:
            check_environment(environment, loaded.base_dir)
        except UserError as e:
            problems.add("rl.environment", str(e))
    if not TRAINERS[cfg.rl.trainer_type].supports_tools:
        able = ", ".join(TRAINERS[n].trainer.partition(":")[2] for n in tool_trainers())
        problems.add(key, f"TRL's {cfg.rl.trainer_type.upper()}Trainer cannot call tools (only {able} "
                     "runs the tool loop); choose a GRPO-family rl.algorithm (grpo, dr_grpo, dapo, gspo ...)")
    if not cfg.template.chat:
        problems.add(key, "tool calls are chat turns; set template.chat=true")


def _check_env_source(source: str, cfg: Any, problems: Problems, key: str) -> None:
    from rlr.envs.registry import ENVIRONMENTS

    name = source.removeprefix("env:")
    writers = sorted(n for n, (_, rows) in ENVIRONMENTS.items() if rows is not None)
    if name not in writers:
        problems.add(f"{key}.source", f"unknown environment {name!r}; environments with prompts of their own: "
                     f"{', '.join(writers)}")
    elif cfg.rl.environment not in (None, name):
        problems.add(f"{key}.source", f"prompts of environment {name!r} but rl.environment is "
                     f"{cfg.rl.environment!r}; set rl.environment={name}")
