"""Procedural tasks: seedable problem generators that carry their own verifier.

`TASKS` maps a name to its task class; `gym:<name>` reaches reasoning-gym (optional extra). A task's knobs are
its dataclass fields; `get_task` checks them here, so a preset's `data.train.knobs` fails at validation time
with the knob named, not mid-run. `get_verifier(task)` gives the `(completion, answer, meta) -> score` function
that both the RL reward and the evaluate stage use: one definition of "correct" per task.
"""

from __future__ import annotations

import difflib
import functools
import typing
from collections.abc import Callable
from typing import Any

from rlr.errors import UserError
from rlr.tasks.arithmetic import ArithmeticTask
from rlr.tasks.base import Knob, ProceduralTask
from rlr.tasks.countdown import CountdownTask
from rlr.tasks.pyfunc import PyFuncTask

__all__ = ["TASKS", "Knob", "ProceduralTask", "get_task", "get_verifier", "task_knobs", "GYM_PREFIX"]

TASKS: dict[str, type[ProceduralTask]] = {
    "arithmetic": ArithmeticTask,
    "countdown": CountdownTask,
    "pyfunc": PyFuncTask,
}
GYM_PREFIX = "gym:"


def _suggest(word: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _task_class(name: str) -> type[ProceduralTask]:
    if name not in TASKS:
        valid = ", ".join([*TASKS, GYM_PREFIX + "<name>"])
        raise UserError(f"unknown task '{name}'{_suggest(name, TASKS)} (valid: {valid})", key="source")
    return TASKS[name]


def task_knobs(name: str) -> dict[str, Knob]:
    """`{knob: Knob(type, default, help)}` for a task; `gym:<name>` lists reasoning-gym's config fields."""
    if name.startswith(GYM_PREFIX):
        from rlr.tasks.gym import gym_knobs

        return gym_knobs(name[len(GYM_PREFIX) :])
    return _task_class(name).knobs()


def _coerce(task: str, key: str, value: Any, annotation: Any) -> Any:
    """`value` as the knob's declared type; strings (from `key=value` overrides) are parsed for scalars."""
    origin = typing.get_origin(annotation) or annotation
    bad = UserError(f"{task}: knob '{key}' must be {getattr(annotation, '__name__', annotation)}, got {value!r}",
                    key=f"args.{key}")
    if origin is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise bad
    elif origin in (int, float):
        if isinstance(value, str):
            try:
                value = origin(value)
            except ValueError:
                raise bad from None
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or (origin is int and isinstance(value, float) and not value.is_integer())
        ):
            raise bad
        value = origin(value)
    elif origin is list:
        if isinstance(value, (str, int, float)):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise bad
        value = list(value)
    return value


def get_task(name: str, **knobs: Any) -> ProceduralTask:
    """A configured task; an unknown name, unknown knob or invalid value raises `UserError` naming the fix, with
    `key` the preset key at fault relative to the source (`source`, `args.<knob>`; `args` for a combination)."""
    if name.startswith(GYM_PREFIX):
        from rlr.tasks.gym import GymTask

        return GymTask(gym_name=name[len(GYM_PREFIX) :], config=dict(knobs))
    cls = _task_class(name)
    declared = cls.knobs()
    values = {}
    for key, value in knobs.items():
        if key not in declared:
            raise UserError(f"{name}: unknown knob '{key}'{_suggest(key, declared)} (valid: {', '.join(declared)})",
                            key=f"args.{key}")
        values[key] = _coerce(name, key, value, declared[key].type)
    return cls(**values)


def get_verifier(task: str, **knobs: Any) -> Callable[[str, str, dict], float]:
    """The picklable `(completion, answer, meta) -> score in [0, 1]` of a task (knobs matter for e.g. format_score)."""
    if task.startswith(GYM_PREFIX):
        from rlr.tasks.gym import check_gym_name, score_gym

        check_gym_name(task[len(GYM_PREFIX) :])  # a missing extra or a typo is reported now, not at the first reward
        return functools.partial(score_gym, task[len(GYM_PREFIX) :])
    return get_task(task, **knobs).verify
