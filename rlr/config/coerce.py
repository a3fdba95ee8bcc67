"""Strict conversion of YAML data into typed dataclasses, collecting every problem.

Values are coerced by the declared type of the field: PyYAML reads `1e-6` as a string and command-line
overrides arrive as strings, so "1e-6" becomes a float where the field is a float. Unknown keys are errors
with a "did you mean" suggestion. Problems are collected as `Problem(key, message, origin)` rather than raised,
so a user sees all of them in one go. A rule across the fields of one section lives in that section's dataclass,
as a `rules()` method that `check_rules` runs once the whole tree is built.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Iterable
from typing import Any, Literal, Union

from rlr.errors import Problem

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class Problems:
    """Collected config problems, each naming the dotted key and the file it came from."""

    def __init__(self, origins: dict[str, str] | None = None):
        self.items: list[Problem] = []
        self.origins = origins or {}

    def add(self, key: str, message: str) -> None:
        self.items.append(Problem(key, message, self.origin_of(key)))

    def add_error(self, prefix: str, error: Exception, default_key: str) -> None:
        """A `UserError` raised while building the thing at `prefix` (a task, a reward), filed under its own key."""
        key = getattr(error, "key", None) or default_key
        self.add(f"{prefix}.{key}" if key else prefix, str(error))

    def where(self, key: str) -> str:
        origin = self.origin_of(key)
        return f" ({origin})" if origin else ""

    def origin_of(self, key: str) -> str:
        # The origin of the closest enclosing key that we know about (the file, or "command line"). Problems name
        # list items `rewards[0]`; overrides record them as `rewards.0`, and a one-source `data.train` mapping
        # (normalised to a list later) as `data.train.source`: try all three spellings, most specific match wins.
        spellings = {key, re.sub(r"\[(\d+)\]", r".\1", key), re.sub(r"\[\d+\]", "", key)}
        best, origin = 0, ""
        for spelling in spellings:
            parts = spelling.split(".")
            for i in range(len(parts), best, -1):
                if found := self.origins.get(".".join(parts[:i])):
                    best, origin = i, found
                    break
        # A problem about a whole item (`rewards[2].args: bad args`) may come from an override of one key inside it.
        inner = sorted({(k, o) for k, o in self.origins.items() if o != origin
                        and any(k.startswith(f"{spelling}.") for spelling in spellings)})
        if inner:
            keys = ", ".join(k for k, _ in inner)
            sources = ", ".join(sorted({o for _, o in inner}))
            return f"in {origin}; {keys} from {sources}" if origin else f"{keys} from {sources}"
        return f"in {origin}" if origin else ""


def suggest(name: str, candidates: list[str] | set[str]) -> str:
    match = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def coerce_value(value: Any, tp: Any) -> Any:
    """Coerce `value` to the type `tp`, raising ValueError with a short reason when it cannot."""
    if tp is Any or tp is typing.Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("null", "none", "~")):
            if type(None) in args:
                return None
        # Try the exact-type match first so `list[str] | str` keeps a string a string.
        for arg in args:
            if arg is not type(None) and isinstance(arg, type) and type(value) is arg:
                return value
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce_value(value, arg)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError(f"expected {type_name(tp)}, got {value!r}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices:
            return value
        raise ValueError(f"must be one of {', '.join(map(str, choices))}; got {value!r}{suggest(str(value), choices)}")
    if origin in (list, tuple):
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        if isinstance(value, str) and value.startswith("["):
            import yaml

            from rlr.config.yaml_values import load_yaml

            try:
                value = load_yaml(value)
            except yaml.YAMLError:
                raise ValueError(f"expected a list, got {value!r} (not valid YAML; write e.g. [1, 8])") from None
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and item_tp is not Any:
            value = [value]  # a scalar where a list is expected: a list of one
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {value!r}")
        return [coerce_value(v, item_tp) for v in value]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ValueError(f"expected a mapping, got {value!r}")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError(f"expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ValueError(f"expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                f = float(value)
            except ValueError:
                raise ValueError(f"expected an integer, got {value!r}") from None
            if f.is_integer():
                return int(f)
        raise ValueError(f"expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise ValueError(f"expected a number, got {value!r}") from None
        raise ValueError(f"expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"expected a string, got {value!r}")
    if dataclasses.is_dataclass(tp):
        raise ValueError("expected a mapping")
    return value


def build_dataclass(cls: type, data: Any, key: str, problems: Problems) -> Any:
    """Build `cls` from a mapping, recording unknown keys and bad values in `problems`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.add(key or "<top level>", f"expected a mapping of {cls.__name__} keys, got {data!r}")
        return cls()
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, value in data.items():
        dotted = f"{key}.{name}" if key else str(name)
        if name not in fields:
            problems.add(dotted, f"unknown key{suggest(str(name), list(fields))}")
            continue
        before = len(problems.items)
        built = build_value(hints[name], value, dotted, problems)
        # A bad scalar keeps the default, so later checks see sane types; a section keeps its good keys.
        if len(problems.items) == before or built is not None:
            kwargs[name] = built
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:  # only missing required fields can land here
        problems.add(key or "<top level>", str(e))
        return cls()


def build_value(tp: Any, value: Any, key: str, problems: Problems) -> Any:
    if dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, key, problems)
    if typing.get_origin(tp) is list:
        (item_tp,) = typing.get_args(tp)
        if dataclasses.is_dataclass(item_tp):
            items = value if isinstance(value, list) else [value]  # one source is a mixture of one
            return [build_dataclass(item_tp, v, f"{key}[{i}]", problems) for i, v in enumerate(items)]
    try:
        return coerce_value(value, tp)
    except ValueError as e:
        problems.add(key, str(e))
        return None


def to_dict(obj: Any) -> Any:
    """A dataclass tree as plain YAML-able data (the resolved config that is saved with every stage)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def check_rules(obj: Any, key: str, problems: Problems) -> None:
    """Run every section's `rules()` (cross-field checks, yielding `(field, message)`), depth first."""
    if not dataclasses.is_dataclass(obj):
        return
    rules = getattr(obj, "rules", None)
    if callable(rules):
        for name, message in typing.cast(Iterable[tuple[str, str]], rules()):
            problems.add(f"{key}.{name}" if key else name, message)
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        dotted = f"{key}.{f.name}" if key else f.name
        if isinstance(value, list):
            for i, item in enumerate(value):
                check_rules(item, f"{dotted}[{i}]", problems)
        else:
            check_rules(value, dotted, problems)
