"""Every tool call runs under a guard: a time limit, no escape by SystemExit, a bounded reply.

TRL's tool loop already turns an exception into an `{"error": ...}` reply (and counts it in tools/failure_frequency),
so exceptions pass through. What it does not survive is a call that never returns (the trainer would wait forever), a
`sys.exit()` (SystemExit is not an Exception), or a reply of megabytes (it would be tokenized into the context). A call
past its time limit raises TimeoutError in the trainer and its thread is abandoned: Python cannot kill a thread, so a
tool that must run untrusted code should run it in the sandbox, as the built-in `python` does.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

MAX_REPLY_CHARS = 2000  # what goes back into the context; more would crowd out the completion budget


class ToolError(RuntimeError):
    """A tool call that failed in a way TRL would not catch by itself."""


def clip(text: str, limit: int = MAX_REPLY_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n... [{len(text) - limit} more characters cut]"


def guarded(func: Callable[..., Any], timeout_s: float) -> Callable[..., Any]:
    """`func` with a time limit and a clipped text reply (TRL would str() it anyway); name, signature and docstring
    kept, since TRL builds the tool's schema from them."""

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["value"] = func(*args, **kwargs)
            except BaseException as e:  # noqa: BLE001 -- SystemExit in a tool must not end the run
                outcome["error"] = e

        worker = threading.Thread(target=run, name=f"tool-{getattr(func, '__name__', 'call')}", daemon=True)
        worker.start()
        worker.join(timeout_s)
        if worker.is_alive():
            raise TimeoutError(f"the tool call did not return within {timeout_s:g} s")
        error = outcome.get("error")
        if isinstance(error, Exception):
            raise error
        if error is not None:
            raise ToolError(f"the tool raised {type(error).__name__}")
        value = outcome.get("value")
        return value if isinstance(value, list) else clip(str(value))  # a list: TRL's multimodal content blocks

    return call
