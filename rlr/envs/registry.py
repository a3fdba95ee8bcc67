"""Environment registry: `rl.environment` -> the factory TRL's GRPOTrainer calls once per rollout.

A shipped environment by name, a user one as `file.py:Class` or `module:Class` (loaded like a user reward). Checked
when the config loads: one instance is built (TRL builds one at start too), it must have `reset`, and each public
method must be a tool TRL can describe (type hints and a docstring with `Args:`). Every tool method runs under the
same guard as rl.tools (time limit, SystemExit caught, reply clipped), so a user environment cannot stop training.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlr.envs import code_tests, guess_number
from rlr.errors import UserError

# name -> (environment class, row generator for `data.train.source: env:<name>`, or None: prompts from your data)
ENVIRONMENTS: dict[str, tuple[type, Callable[[int, int], list[dict[str, Any]]] | None]] = {
    "guess_number": (guess_number.GuessNumberEnv, guess_number.generate_rows),
    "code_tests": (code_tests.CodeTestsEnv, None),
}
RESERVED = ("reset", "get_reward")


def _unknown(name: str) -> UserError:
    close = difflib.get_close_matches(name, ENVIRONMENTS, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return UserError(f"unknown environment {name!r}; {hint}shipped: {', '.join(sorted(ENVIRONMENTS))}; or give your "
                     "own as file.py:Class or module:Class")


def load_environment(ref: str, base_dir: Path | None = None) -> type:
    if ":" not in ref:
        if ref not in ENVIRONMENTS:
            raise _unknown(ref)
        return ENVIRONMENTS[ref][0]
    from rlr.rewards.plugins import load_module

    target, _, attr = ref.rpartition(":")
    module = load_module(ref, target, base_dir, kind="environment")
    cls = getattr(module, attr, None)
    if not inspect.isclass(cls):
        raise UserError(f"environment {ref!r}: {target} has no class {attr!r}")
    return cls


def tool_methods(cls: type) -> list[str]:
    """The methods TRL exposes as tools: public functions of the class other than reset / get_reward."""
    return [n for n, _ in inspect.getmembers(cls, predicate=inspect.isfunction)
            if not n.startswith("_") and n not in RESERVED]


def check_environment(ref: str, base_dir: Path | None = None) -> type:
    """The class, after the checks TRL would fail on mid-start; UserError naming the method and the fix."""
    from rlr.tools.registry import check_tool_schema

    cls = load_environment(ref, base_dir)
    if not callable(getattr(cls, "reset", None)):
        raise UserError(f"environment {ref!r}: {cls.__name__} has no reset(**row) method (TRL calls it at the start "
                        "of every episode with the data row)")
    try:
        instance = cls()
    except Exception as e:
        raise UserError(f"environment {ref!r}: {cls.__name__}() failed ({type(e).__name__}: {e}); TRL builds it "
                        "with no arguments") from None
    methods = tool_methods(cls)
    if not methods:
        raise UserError(f"environment {ref!r}: {cls.__name__} has no public methods for the model to call")
    for name in methods:
        check_tool_schema(f"{ref}.{name}", getattr(instance, name))
    return cls


def guarded_factory(cls: type, timeout_s: float) -> type:
    """A subclass whose tool methods run under rlr's tool guard (TRL reads the same names, hints and docstrings)."""
    from rlr.tools.guard import guarded

    def guard(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            return guarded(functools.partial(method, self), timeout_s)(*args, **kwargs)

        return call

    body = {name: guard(getattr(cls, name)) for name in tool_methods(cls)}
    return type(cls.__name__, (cls,), body)  # same name: TRL logs the environment's reward under it


def environment_rows(name: str, n: int, seed: int) -> list[dict[str, Any]]:
    """Prompts a shipped environment writes itself, for `data.train.source: env:<name>`."""
    if name not in ENVIRONMENTS:
        raise _unknown(name)
    generate = ENVIRONMENTS[name][1]
    if generate is None:
        raise UserError(f"environment {name!r} has no prompts of its own; give a data file with a tests column and "
                        f"set rl.environment={name}")
    return generate(n, seed)
