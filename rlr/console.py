"""Human-facing output: rich tables and panels, always on stderr (stdout is kept for --json)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

stderr = Console(stderr=True)
_json_stdout: Any = None  # the real stdout once protect_json_stdout() moved fd 1 to stderr


def protect_json_stdout() -> None:
    """--json promises stdout holds the summary alone: from here on, whatever else writes to fd 1 (a reward's or a
    library's print, a C extension, a subprocess) lands on stderr, and `print_json` writes to the real stdout.
    Only when stdout is the process's fd 1 (not under a capturing test harness)."""
    global _json_stdout
    if _json_stdout is not None:
        return
    try:
        if sys.stdout.fileno() != 1:
            return
    except (AttributeError, OSError, ValueError):
        return
    sys.stdout.flush()
    _json_stdout = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)


def real_stdout() -> Any:
    """Where a child process that prints the --json summary must write (None: inherit this process's stdout)."""
    return _json_stdout


def print_json(payload: Any) -> None:
    stream = _json_stdout or sys.stdout
    stream.write(json.dumps(payload, default=str) + "\n")
    stream.flush()


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def print_summary(summary: dict[str, Any], title: str) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in summary.items():
        if key.startswith("_"):
            continue
        table.add_row(key, format_value(value))
    stderr.print(table)
