"""User-facing errors.

A `UserError` is bad input: the CLI prints its message on one line, exits with code 2 and shows no
traceback (unless `--debug`). Anything else that escapes a command is a failed run (exit code 1).
"""

from __future__ import annotations

from dataclasses import dataclass


class UserError(Exception):
    """Bad input the user can fix. The message must say what is wrong and how to fix it.

    `key` names the setting at fault relative to what was being built (a task's `args.digits`, a reward's `name`),
    so a config check can file the problem under the right dotted key without parsing the message.
    """

    exit_code = 2

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Problem:
    """One config problem: the dotted key, what is wrong and the fix, and where the key was set (file or override)."""

    key: str
    message: str
    origin: str = ""  # "in presets/x.yaml", "in x.yaml; rewards.0.args.a from command line", or "" when unknown

    def __str__(self) -> str:
        text = f"{self.key}: {self.message}" if self.key else self.message
        return f"{text} ({self.origin})" if self.origin else text


class ConfigError(UserError):
    """One or more problems in a preset; all of them are collected before raising."""

    def __init__(self, problems: list[Problem] | list[str]):
        self.items = [p if isinstance(p, Problem) else Problem("", str(p)) for p in problems]
        self.problems = [str(p) for p in self.items]  # the lines the user sees
        if len(self.problems) == 1:
            super().__init__(self.problems[0])
        else:
            super().__init__(f"{len(self.problems)} problems in the config:\n"
                             + "\n".join(f"  - {p}" for p in self.problems))


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
