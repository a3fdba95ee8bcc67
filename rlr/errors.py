"""User-facing errors.

A `UserError` is bad input: the CLI prints its message on one line, exits with code 2 and shows no
traceback (unless `--debug`). Anything else that escapes a command is a failed run (exit code 1).
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input the user can fix. The message must say what is wrong and how to fix it."""

    exit_code = 2


class ConfigError(UserError):
    """One or more problems in a preset; all of them are collected before raising."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        if len(problems) == 1:
            super().__init__(problems[0])
        else:
            super().__init__(f"{len(problems)} problems in the config:\n" + "\n".join(f"  - {p}" for p in problems))


class GateFailed(Exception):
    """A CI gate (`--min metric=value`) or a sanity band was missed: exit code 1.

    `summary` is what the command would have printed with --json: a CI script still gets the numbers."""

    exit_code = 1

    def __init__(self, message: str, summary: dict | None = None):
        super().__init__(message)
        self.summary = summary


class RunStopped(Exception):
    """A run stopped itself on purpose (an `rl.alarms` entry in stop mode): exit code 1, one message, no traceback.

    The message names what tripped, the values, the checkpoints and what to change."""

    exit_code = 1
