"""`python`: run the model's code in rlr's sandbox (rlr/sandbox) and return what it printed, or the error.

Each call is a fresh, short-lived, network-less process with its own time, memory and output limits
(`DEFAULT_LIMITS`; the time limit is rl.tool_timeout_s), so a hanging, crashing or flooding program costs one call's
time limit and comes back to the model as text: a failing program is feedback for the model, not a failed tool call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rlr.tools.guard import clip

DEFAULT_LIMITS: dict[str, Any] = {"timeout_s": 5.0, "memory_mb": 512, "max_output_bytes": 20_000}

PYTHON_DOC = """Run a Python program and return what it printed (stdout), or the error.

    Args:
        code: A complete Python program; print() the values you need.
    """


def format_result(result: Any) -> str:
    """One reply for the model from a SandboxResult: stdout, or what went wrong (with the tail of stderr)."""
    if result.ok:
        return clip(result.stdout) if result.stdout else "(no output; print() what you want to see)"
    if result.killed_reason == "timeout":
        return clip(f"error: timed out after the time limit\n{result.stdout}".rstrip())
    if result.killed_reason == "output_limit":
        return clip(f"error: output limit reached\n{result.stdout}")
    tail = result.stderr.strip().splitlines()[-3:] if result.stderr else []
    reason = result.killed_reason or f"exit code {result.returncode}"
    return clip("\n".join([f"error: {reason}", *tail, result.stdout.rstrip()]).rstrip())


def make_python_tool(timeout_s: float = DEFAULT_LIMITS["timeout_s"]) -> Callable[[str], str]:
    """The `python` tool with `timeout_s` per call (a function: TRL reads its name, type hints and docstring)."""
    limits = {**DEFAULT_LIMITS, "timeout_s": timeout_s}

    def python(code: str) -> str:
        from rlr.sandbox.runner import run_code

        try:
            return format_result(run_code(str(code), **limits))
        except Exception as e:  # the sandbox itself failing (no fork, no /tmp) must not stop training either
            return f"error: the sandbox could not run the code ({type(e).__name__}: {e})"

    python.__doc__ = PYTHON_DOC
    return python


python = make_python_tool()
