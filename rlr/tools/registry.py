"""Tool registry: `rl.tools` names -> the callables TRL's GRPOTrainer runs during rollouts.

A built-in by name, a user tool as `file.py:function` or `module:function` (loaded like a user reward, relative to the
preset). TRL turns each tool into the JSON schema the chat template shows the model with transformers'
`get_json_schema`, which needs type hints on every argument and a Google-style docstring with an `Args:` entry per
argument; rlr runs that same function when the config loads, so a tool TRL would reject fails there, naming it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlr.errors import UserError
from rlr.tools.calculator import calculator
from rlr.tools.guard import guarded
from rlr.tools.python import make_python_tool, python

TOOLS: dict[str, Callable[..., str]] = {"calculator": calculator, "python": python}
DEFAULT_TIMEOUT_S = 10.0


def load_tool(ref: str, base_dir: Path | None = None) -> Callable[..., Any]:
    """One tool callable from its `rl.tools` entry; UserError naming it on any problem."""
    if ":" not in ref:
        if ref in TOOLS:
            return TOOLS[ref]
        close = difflib.get_close_matches(ref, TOOLS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(f"unknown tool {ref!r}; {hint}built-ins: {', '.join(sorted(TOOLS))}; or give your own as "
                        "file.py:function or module:function")
    from rlr.rewards.plugins import load_module

    target, _, attr = ref.rpartition(":")
    module = load_module(ref, target, base_dir, kind="tool")
    func = getattr(module, attr, None)
    if not callable(func):
        raise UserError(f"tool {ref!r}: {target} has no function {attr!r}")
    return func


def check_tool_schema(ref: str, func: Callable[..., Any]) -> dict[str, Any]:
    """The JSON schema TRL will build for `func`; UserError with the fix when it cannot be built."""
    from transformers.utils import get_json_schema

    try:
        return get_json_schema(func)
    except Exception as e:  # TypeHintParsingException / DocstringParsingException, or a signature it cannot read
        raise UserError(f"tool {ref!r}: {e}; a tool needs type hints on every argument and a docstring with an "
                        "`Args:` line per argument (TRL builds the schema the model sees from them)") from None


def build_tools(refs: list[str], base_dir: Path | None = None,
                timeout_s: float = DEFAULT_TIMEOUT_S) -> list[Callable[..., Any]]:
    """The guarded callables for GRPOTrainer(tools=...); `python` runs its sandbox with `timeout_s` per call."""
    tools = [make_python_tool(timeout_s) if ref == "python" else load_tool(ref, base_dir) for ref in refs]
    tools = [guarded(t, timeout_s + 5 if ref == "python" else timeout_s)  # the sandbox enforces python's own limit
             for ref, t in zip(refs, tools, strict=True)]
    names = [getattr(t, "__name__", "") for t in tools]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"rl.tools: two tools are named {twice[0]!r}; TRL calls tools by name, so rename one")
    return tools


def tool_problems(refs: list[str], base_dir: Path | None = None) -> list[tuple[str, str]]:
    """(key, message) for each tool that would not load or that TRL could not describe; never raises."""
    problems: list[tuple[str, str]] = []
    for i, ref in enumerate(refs):
        try:
            check_tool_schema(ref, load_tool(ref, base_dir))
        except UserError as e:
            problems.append((f"rl.tools[{i}]", str(e)))
    if not problems:
        try:
            build_tools(refs, base_dir)
        except UserError as e:
            problems.append(("rl.tools", str(e)))
    return problems
