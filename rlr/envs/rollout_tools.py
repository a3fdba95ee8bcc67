"""The tools and environment a rollout runs with, built once for training and evaluation alike.

`trainer_kwargs` gives GRPOTrainer's `tools=` / `environment_factory=` and `rlr evaluate`'s tool episodes the same
guarded tools (per-call timeout, errors as replies) and the same environment class, so the task a model is trained
on is the task it is evaluated on. The config check lives in rlr/train/agentic.py.
"""

from __future__ import annotations

from typing import Any

from rlr.config.load import LoadedConfig
from rlr.errors import UserError


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
    environment = cfg.rl.environment or env_of_sources(cfg)
    if environment:
        from rlr.envs.registry import guarded_factory, load_environment

        kwargs["environment_factory"] = guarded_factory(load_environment(environment, loaded.base_dir),
                                                        cfg.rl.tool_timeout_s)
    if kwargs:
        from rlr.models.tiny import attach_tool_parser

        attach_tool_parser(tokenizer)  # rlr's tiny model: TRL's parser for its tool calls, only in tool runs
        check_tokenizer(tokenizer)
    return kwargs


def env_of_sources(cfg: Any) -> str | None:
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
