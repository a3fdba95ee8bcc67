"""Where `rl.tools` (and `rl.environment`) meet the rest of rlr: the config check and the trainer's keyword arguments.

Kept out of rlr/config/validate.py and rlr/train/rl.py on purpose: each of those calls in here once, so the agentic
part of a run reads in one place.
"""

from __future__ import annotations

from typing import Any

from rlr.config.coerce import Problems
from rlr.config.load import LoadedConfig
from rlr.errors import UserError


def check_agentic(loaded: LoadedConfig, problems: Problems) -> None:
    """Config-load checks: every tool loads and has a schema TRL can build; the trainer and prompts can carry them."""
    from rlr.tools.registry import tool_problems

    cfg = loaded.cfg
    if not cfg.rl.tools:
        return
    for key, message in tool_problems(cfg.rl.tools, loaded.base_dir):
        problems.add(key, message)
    if cfg.rl.trainer_type != "grpo":
        problems.add("rl.tools", f"TRL's {cfg.rl.trainer_type.upper()}Trainer cannot call tools (only GRPOTrainer "
                     "runs the tool loop); choose a GRPO-family rl.algorithm (grpo, dr_grpo, dapo, gspo ...)")
    if not cfg.template.chat:
        problems.add("rl.tools", "tool calls are chat turns; set template.chat=true")


def check_tokenizer(tokenizer: Any) -> None:
    """TRL raises a bare ValueError deep in the trainer's __init__; say which key fixes it, before training starts."""
    from trl.chat_template_utils import supports_tool_calling

    if not supports_tool_calling(tokenizer):
        raise UserError("rl.tools: the model's chat template cannot render tool calls and tool replies; use a "
                        "tool-calling model (e.g. Qwen2.5-Instruct), a tiny model from `rlr tiny-model`, or set "
                        "model.chat_template to a template that renders them")


def trainer_kwargs(loaded: LoadedConfig, tokenizer: Any) -> dict[str, Any]:
    """GRPOTrainer's `tools=` for this preset ({} for a run without tools, so TRL sees no difference)."""
    from rlr.tools.registry import build_tools

    cfg = loaded.cfg
    if not cfg.rl.tools:
        return {}
    check_tokenizer(tokenizer)
    return {"tools": build_tools(cfg.rl.tools, loaded.base_dir, cfg.rl.tool_timeout_s)}


def tool_schemas(loaded: LoadedConfig) -> list[dict[str, Any]] | None:
    """The JSON schemas of rl.tools (what the chat template shows the model), or None without tools."""
    from rlr.tools.registry import build_tools, check_tool_schema

    refs = loaded.cfg.rl.tools
    if not refs:
        return None
    tools = build_tools(refs, loaded.base_dir, loaded.cfg.rl.tool_timeout_s)
    return [check_tool_schema(ref, tool) for ref, tool in zip(refs, tools, strict=True)]
