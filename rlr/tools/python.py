"""`python`: run the model's code in rlr's sandbox (rlr/sandbox) and return what it printed, or the error.

Each call is a fresh, short-lived, network-less process with its own time, memory and output limits
(`DEFAULT_LIMITS`), so a hanging, crashing or flooding program costs one call's time limit and comes back to the
model as text; it never raises into the trainer.
"""

from __future__ import annotations

from typing import Any

DEFAULT_LIMITS: dict[str, Any] = {"timeout_s": 5.0, "memory_mb": 512, "max_output_bytes": 20_000}
MAX_REPLY_CHARS = 2000  # what goes back into the context: a tool reply longer than this would crowd the completion


def _clip(text: str, limit: int = MAX_REPLY_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n... [{len(text) - limit} more characters cut]"


def format_result(result: Any) -> str:
    """One reply for the model from a SandboxResult: stdout, or what went wrong (with the tail of stderr)."""
    if result.ok:
        return _clip(result.stdout) if result.stdout else "(no output; print() what you want to see)"
    if result.killed_reason == "timeout":
        return _clip(f"error: timed out after the time limit\n{result.stdout}".rstrip())
    if result.killed_reason == "output_limit":
        return _clip(f"error: output limit reached\n{result.stdout}")
    tail = result.stderr.strip().splitlines()[-3:] if result.stderr else []
    reason = result.killed_reason or f"exit code {result.returncode}"
    return _clip("\n".join([f"error: {reason}", *tail, result.stdout.rstrip()]).rstrip())


def python(code: str) -> str:
    """Run a Python program and return what it printed (stdout), or the error.

    Args:
        code: A complete Python program; print() the values you need.
    """
    from rlr.sandbox.runner import run_code

    try:
        return format_result(run_code(str(code), **DEFAULT_LIMITS))
    except Exception as e:  # the sandbox itself failing (no fork, no /tmp) must not stop training either
        return f"error: the sandbox could not run the code ({type(e).__name__}: {e})"
