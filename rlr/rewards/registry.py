"""Reward registry: built-in rewards by name, user rewards by `module:function` or `file.py:function`.

A preset lists rewards as `{name, weight, args}`; `build_reward_functions` turns them into TRL reward
callables and their weights. Built-ins that take `args` are classes (picklable, unlike closures: TRL's
async rollout worker and multi-process data tools send reward functions to other processes); the rest are
plain functions. Every returned callable has `__name__` equal to its name in the preset, since TRL logs
`rewards/<__name__>/mean`.
"""

from __future__ import annotations

import difflib
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rlr.errors import UserError
from rlr.rewards.accuracy import ExactMatch, MathAccuracy, NumericMatch, TaskScore
from rlr.rewards.base import Reward
from rlr.rewards.code import CodeTests
from rlr.rewards.format import ThinkFormat, answer_format, tag_count
from rlr.rewards.length import Cosine, LengthPenalty, Overlong, Repetition
from rlr.rewards.plugins import UserReward, is_user_reward, load_user_reward

# name -> a Reward class (built from `args`) or a plain function (takes no args).
REWARDS: dict[str, type[Reward] | Callable[..., list[float]]] = {
    "math_accuracy": MathAccuracy,
    "accuracy": TaskScore,
    "task_score": TaskScore,
    "exact_match": ExactMatch,
    "numeric_match": NumericMatch,
    "think_format": ThinkFormat,
    "tag_count": tag_count,
    "answer_format": answer_format,
    "overlong": Overlong,
    "cosine": Cosine,
    "length_penalty": LengthPenalty,
    "repetition": Repetition,
    "code_tests": CodeTests,
}


class NamedReward:
    """A plain reward function under another name (picklable when the function is module-level)."""

    def __init__(self, func: Callable, name: str) -> None:
        self.func, self.__name__ = func, name

    def __call__(self, completions: list[Any], **kwargs: Any) -> list[float | None]:
        return self.func(completions, **kwargs)


def _field(spec: Any, key: str, default: Any = None) -> Any:
    """Specs are config dataclasses (attributes); plain dicts are accepted too, for tests and scripts."""
    if isinstance(spec, Mapping):
        return spec.get(key, default)
    return getattr(spec, key, default)


def _accepted_args(entry: Any) -> list[str]:
    if not inspect.isclass(entry):
        return []
    return [p for p in inspect.signature(entry.__init__).parameters if p != "self"]


# The scalar types a built-in reward's args are annotated with, and how an error names them.
_SCALARS: dict[type, str] = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def _is(value: Any, kind: type) -> bool:
    if kind is bool or isinstance(value, bool):  # Python's True is an int: a bool only ever is a bool here
        return kind is bool and isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float))  # YAML's 5 for a float arg
    return isinstance(value, kind)


def _arg_type_problem(entry: type, key: str, value: Any) -> str | None:
    """What is wrong with the type of one arg against the constructor's annotation (None: fine, or not a plain
    scalar annotation). Checked here because a constructor that only stores the value (math_accuracy's
    `timeout_s: fast`) would fail on every call instead, after the run has started."""
    hint = typing.get_type_hints(entry.__init__).get(key)
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    kinds = [k for k in (typing.get_args(hint) if union else (hint,)) if k is not type(None)]
    optional = union and len(kinds) < len(typing.get_args(hint))
    if not kinds or any(k not in _SCALARS for k in kinds):
        return None
    if (value is None and optional) or any(_is(value, k) for k in kinds):
        return None
    wanted = " or ".join(_SCALARS[k] for k in kinds) + (" or null" if optional else "")
    return f"must be {wanted}, got {value!r}"


def build_reward(name: str, args: Mapping[str, Any] | None = None, base_dir: Path | None = None) -> Callable:
    """One reward callable from its preset name and args; UserError (with the fix) on any problem."""
    args = dict(args or {})
    if is_user_reward(name):
        func = load_user_reward(name, base_dir)
        if inspect.iscoroutinefunction(func):
            if args:
                raise UserError(f"reward {name!r}: an async reward takes no `args`; read settings inside it, or make "
                                "it a class built from them", key="args")
            return func  # TRL awaits async rewards itself; a sync wrapper would hide that
        return UserReward(name, base_dir, args=args)
    entry = REWARDS.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, REWARDS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(
            f"unknown reward {name!r}; {hint}built-ins: {', '.join(sorted(REWARDS))}; "
            "or give your own as module.path:function or file.py:function"
        )
    if not inspect.isclass(entry):
        if args:
            raise UserError(f"reward {name!r} takes no args; remove `args` ({', '.join(args)})")
        return entry
    accepted = _accepted_args(entry)
    unknown = [a for a in args if a not in accepted]
    if unknown:
        bad = unknown[0]
        close = difflib.get_close_matches(bad, accepted, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(f"reward {name!r}: unknown arg {bad!r}; {hint}it accepts: {', '.join(accepted) or 'none'}")
    try:
        reward, error = entry(**args), None
    except (TypeError, ValueError) as e:
        # the built-ins' checks start with the arg they refuse ("max_penalty must be <= 0"): file it under that key,
        # unless the message names another arg too (a pair's rule is the whole `args`' problem)
        named = [a for a in accepted if re.search(rf"\b{re.escape(a)}\b", str(e))]
        if len(named) == 1 and str(e).startswith(named[0]):
            raise UserError(f"reward {name!r}: bad args {args}: {e}", key=f"args.{named[0]}") from e
        error = e
    for key, value in args.items():  # after the constructor's own checks, whose messages say more
        if problem := _arg_type_problem(entry, key, value):
            raise UserError(f"reward {name!r}: {key} {problem}", key=f"args.{key}")
    if error is not None:
        raise UserError(f"reward {name!r}: bad args {args}: {error}", key="args") from error
    reward.__name__ = name
    return reward


def with_length_defaults(specs: Sequence[Any], max_completion_length: int) -> list[Any]:
    """Length-shaped rewards measure against the run's completion budget unless their args say otherwise (each
    declares which args through `Reward.length_budget_defaults`): their class defaults (1024 tokens) would be wrong
    for any other budget."""
    import dataclasses

    out = []
    for spec in specs:
        name, args = _field(spec, "name"), _field(spec, "args") or {}
        entry = REWARDS.get(name) if isinstance(name, str) else None
        defaults = entry.length_budget_defaults(args, max_completion_length) \
            if inspect.isclass(entry) and isinstance(args, Mapping) else {}
        if not defaults:
            out.append(spec)
            continue
        args = {**defaults, **args}
        out.append({**spec, "args": args} if isinstance(spec, Mapping) else dataclasses.replace(spec, args=args))
    return out


def correctness_reward_names() -> frozenset[str]:
    """The built-in rewards that declare `measures_correctness` (for readers of logs, such as the report)."""
    return frozenset(n for n, e in REWARDS.items() if getattr(e, "measures_correctness", False))


# rl/manifest.json `inputs` key: the logged names (`rewards/<name>/mean`) of the run's rewards that measure correctness
CORRECTNESS_REWARDS_KEY = "correctness_rewards"


def correctness_names_of(funcs: Sequence[Any]) -> list[str]:
    """The `__name__` (what TRL logs) of each built reward function that declares `measures_correctness`, user
    rewards included; what train-rl records for readers of its logs."""
    from rlr.rewards.base import measures_correctness

    return [getattr(f, "__name__", "") for f in funcs if measures_correctness(f)]


def correctness_rewards_of_run(run_dir: Path) -> frozenset[str]:
    """The logged names of the rewards that measured correctness in the rl stage of `run_dir` (runs/<name>), as
    train-rl recorded them; a run directory from before that record falls back to the built-in names."""
    from rlr.runs import StageRun

    recorded = (StageRun(Path(run_dir), "rl").manifest().get("inputs") or {}).get(CORRECTNESS_REWARDS_KEY)
    if isinstance(recorded, list) and all(isinstance(n, str) for n in recorded):
        return frozenset(recorded)
    return correctness_reward_names()


def build_reward_functions(specs: Sequence[Any], base_dir: Path | None = None) -> tuple[list[Callable], list[float]]:
    """TRL reward callables and weights for a preset's `rewards:` list (`.name`, `.weight`, `.args` each).

    A name listed twice (e.g. two `overlong` with different args) gets `_2`, `_3` appended so that TRL's
    per-reward logs stay apart.
    """
    funcs: list[Callable] = []
    weights: list[float] = []
    seen: dict[str, int] = {}
    for spec in specs:
        name = str(_field(spec, "name"))
        func = build_reward(name, _field(spec, "args") or {}, base_dir)
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            label = f"{name}_{seen[name]}"
            if isinstance(func, (Reward, UserReward)):
                func.__name__ = label
            elif not inspect.iscoroutinefunction(func):
                func = NamedReward(func, label)  # never rename a module-level function in place
        funcs.append(func)
        weight = _field(spec, "weight", 1.0)
        weights.append(float(1.0 if weight is None else weight))
    return funcs, weights


def _name_resolves(name: str, base_dir: Path | None) -> bool:
    if not is_user_reward(name):
        return name in REWARDS
    try:
        load_user_reward(name, base_dir)
    except Exception:
        return False
    return True


def validate_reward_specs(specs: Sequence[Any], base_dir: Path | None = None) -> list[str]:
    """Every problem with the specs as a `rewards[i].field: message` line (empty when all load); never raises."""
    return [f"{key}: {message}" for key, message in reward_spec_problems(specs, base_dir)]


def reward_spec_problems(specs: Sequence[Any], base_dir: Path | None = None) -> list[tuple[str, str]]:
    """Every problem with the specs as `(key, message)`, the key being `rewards[i].field` (so the config check can
    say which file or override set it); never raises, for the config validator."""
    problems: list[tuple[str, str]] = []
    for i, spec in enumerate(specs):
        name = _field(spec, "name")
        if not isinstance(name, str) or not name:
            problems.append((f"rewards[{i}].name", "missing (a built-in like math_accuracy, or module:function)"))
            continue
        weight = _field(spec, "weight", 1.0)
        if weight is not None and not isinstance(weight, (int, float)):
            problems.append((f"rewards[{i}].weight", f"reward {name!r}: must be a number, got {weight!r}"))
        args = _field(spec, "args") or {}
        if not isinstance(args, Mapping):
            problems.append((f"rewards[{i}].args", f"reward {name!r}: must be a mapping, got {type(args).__name__}"))
            continue
        try:
            build_reward(name, args, base_dir)
        except UserError as e:
            field = e.key or "name"
            if not e.key and args and _name_resolves(name, base_dir):
                unknown = [a for a in args if a not in _accepted_args(REWARDS.get(name))]
                field = f"args.{unknown[0]}" if unknown else "args"
            problems.append((f"rewards[{i}].{field}", str(e)))
        except Exception as e:  # a user module may raise anything at import; report it, do not crash validation
            problems.append((f"rewards[{i}].name", f"reward {name!r}: {type(e).__name__}: {e}"))
    return problems
