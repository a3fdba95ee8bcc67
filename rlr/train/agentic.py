"""Where `rl.tools` (and `rl.environment`) meet the rest of rlr: the config check and the trainer's keyword arguments.

Kept out of rlr/train/rl_config.py, rl.py and sft.py on purpose: each of those calls in here once, so the agentic
part of a run reads in one place.
"""

from __future__ import annotations

from typing import Any

from rlr.config.coerce import Problems
from rlr.config.load import LoadedConfig
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
    environment = cfg.rl.environment or _env_of_sources(cfg)
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


def check_tokenizer(tokenizer: Any) -> None:
    """TRL raises a bare ValueError deep in the trainer's __init__; say which key fixes it, before training starts."""
    from trl.chat_template_utils import supports_tool_calling

    if not supports_tool_calling(tokenizer):
        raise UserError("rl.tools: the model's chat template cannot render tool calls and tool replies; use a "
                        "tool-calling model (e.g. Qwen2.5-Instruct), a tiny model from `rlr tiny-model`, or set "
                        "model.chat_template to a template that renders them")


def trainer_kwargs(loaded: LoadedConfig, tokenizer: Any) -> dict[str, Any]:
    """GRPOTrainer's `tools=` / `environment_factory=` for this preset ({} without either: TRL sees no difference)."""
    from rlr.tools.registry import build_tools

    cfg = loaded.cfg
    kwargs: dict[str, Any] = {}
    if cfg.rl.tools:
        kwargs["tools"] = build_tools(cfg.rl.tools, loaded.base_dir, cfg.rl.tool_timeout_s)
    environment = cfg.rl.environment or _env_of_sources(cfg)
    if environment:
        from rlr.envs.registry import guarded_factory, load_environment

        kwargs["environment_factory"] = guarded_factory(load_environment(environment, loaded.base_dir),
                                                        cfg.rl.tool_timeout_s)
    if kwargs:
        from rlr.models.tiny import attach_tool_parser

        attach_tool_parser(tokenizer)  # rlr's tiny model: TRL's parser for its tool calls, only in tool runs
        check_tokenizer(tokenizer)
    return kwargs


def _env_of_sources(cfg: Any) -> str | None:
    """`data.train.source: env:<name>` alone means rl.environment=<name>: its prompts need its tools."""
    from rlr.envs.registry import ENVIRONMENTS

    names = {s.source.removeprefix("env:") for s in cfg.data.train if s.source.startswith("env:")}
    known = {n for n, (_, rows) in ENVIRONMENTS.items() if rows is not None}
    return names.pop() if len(names) == 1 and names <= known else None  # else: the source is reported


def tool_schemas(loaded: LoadedConfig) -> list[dict[str, Any]] | None:
    """The JSON schemas of rl.tools (what the chat template shows the model), or None without tools."""
    from rlr.tools.registry import build_tools, check_tool_schema

    refs = loaded.cfg.rl.tools
    if not refs:
        return None
    tools = build_tools(refs, loaded.base_dir, loaded.cfg.rl.tool_timeout_s)
    return [check_tool_schema(ref, tool) for ref, tool in zip(refs, tools, strict=True)]
