"""User reward functions named in a preset: `module.path:function` or `path/to/file.py:function`.

A file path is resolved against the preset's directory (`base_dir`), and that directory is put on
`sys.path` so that a module path next to the preset (`my_rewards:score`) imports too. The function is
checked when the config loads, not at the first training step: it must accept `completions` and `**kwargs`
(TRL passes every dataset column as a keyword argument).

`args:` work as for the built-ins: a class is built with them (`MyReward(**args)`, then called per batch), a
function gets them as keyword arguments it names (`def brevity(completions, max_words=50, **kwargs)`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlr.errors import UserError


def is_user_reward(name: str) -> bool:
    return ":" in name


def load_module(ref: str, target: str, base_dir: Path | None, kind: str = "reward") -> Any:
    """The module of a user plugin `file.py:name` / `module:name` (rewards, tools, environments); errors name the
    plugin as `<kind> '<ref>'`."""
    if target.endswith(".py") or "/" in target or "\\" in target:
        from rlr.paths import resolve_data_path

        found = resolve_data_path(target, Path(base_dir) if base_dir is not None else None)
        if found is None or not found.is_file():
            where = "the current directory" + (f" or the preset's ({base_dir})" if base_dir is not None else "")
            raise UserError(f"{kind} {ref!r}: file {target} not found in {where}")
        path = found
        # A stable, unique module name per file, so two `rewards.py` in different folders do not collide.
        module_name = f"rlr_user_rewards_{path.stem}_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]}"
        if module_name in sys.modules:
            return sys.modules[module_name]
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise UserError(f"{kind} {ref!r}: cannot import {path} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            del sys.modules[module_name]
            raise UserError(f"{kind} {ref!r}: importing {path} failed: {type(e).__name__}: {e}") from e
        return module
    # A module next to the user (or the preset) imports like a file path would find it; appended, so a folder that
    # happens to be named like an installed package cannot shadow it.
    for folder in (Path.cwd(), base_dir):
        if folder is not None and str(folder) not in sys.path:
            sys.path.append(str(folder))
    try:
        return importlib.import_module(target)
    except Exception as e:
        raise UserError(
            f"{kind} {ref!r}: cannot import module {target!r} ({type(e).__name__}: {e}); "
            "give an importable module path or a file path like rewards.py:my_reward"
        ) from e


def check_reward_signature(ref: str, func: Any) -> None:
    """Raise UserError unless `func` is callable as `func(completions=..., **columns)`."""
    if not callable(func):
        raise UserError(f"reward {ref!r} is not callable; point it at a function `def f(completions, **kwargs)`")
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return  # builtins / C callables: nothing to check
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    has_kwargs = any(p.kind is p.VAR_KEYWORD for p in params)
    if "completions" not in names or not has_kwargs:
        raise UserError(
            f"reward {ref!r} has signature {inspect.signature(func)}; it must accept `completions` and `**kwargs` "
            "(TRL passes every dataset column by keyword), e.g. `def my_reward(completions, answer, **kwargs)`"
        )


def load_user_reward(ref: str, base_dir: Path | None = None) -> Callable:
    """Import and check a `target:function` reward; UserError with the fix when anything is wrong."""
    target, _, attr = ref.rpartition(":")
    if not target or not attr:
        raise UserError(f"reward {ref!r}: write user rewards as module.path:function or path/to/file.py:function")
    module = load_module(ref, target, base_dir)
    func = getattr(module, attr, None)
    if func is None:
        public = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
        raise UserError(
            f"reward {ref!r}: {target} has no function {attr!r} (it defines: {', '.join(public) or 'none'})"
        )
    if not inspect.isclass(func):  # a class is checked once it is built with its args (UserReward)
        check_reward_signature(ref, func)
    return func


def _check_args(ref: str, func: Any, args: dict[str, Any]) -> None:
    """Each arg must be a named parameter (of the class's __init__, or of the function besides `completions`)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return
    accepted = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                and p.name not in ("self", "completions")]
    for arg in args:
        if arg not in accepted:
            raise UserError(f"reward {ref!r}: unknown arg {arg!r}{_suggest(arg, accepted)}; it accepts: "
                            f"{', '.join(accepted) or 'none'}", key=f"args.{arg}")


def _suggest(word: str, choices: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class UserReward:
    """A user reward under the name it has in the preset (TRL logs by `__name__`), with its `args:` applied.

    Pickles as its reference and args and re-imports on load, because a function loaded from a file path is not
    importable by its module name in another process.
    """

    def __init__(self, ref: str, base_dir: Path | None = None, name: str | None = None,
                 args: dict[str, Any] | None = None) -> None:
        self.ref, self.base_dir, self.args = ref, base_dir, dict(args or {})
        self.__name__ = name or ref
        target = load_user_reward(ref, base_dir)
        _check_args(ref, target, self.args)
        if inspect.isclass(target):
            try:
                target = target(**self.args)
            except (TypeError, ValueError) as e:
                raise UserError(f"reward {ref!r}: bad args {self.args}: {e}", key="args") from e
            check_reward_signature(ref, target)
            self._call_args: dict[str, Any] = {}
        else:
            self._call_args = self.args
        self._func = target
        # a user's function declares itself as a built-in does: `my_reward.measures_correctness = True`
        self.measures_correctness = bool(getattr(self._func, "measures_correctness", False))

    def __call__(self, completions: list[Any], **kwargs: Any) -> list[float | None]:
        return self._func(completions=completions, **kwargs, **self._call_args)

    def __reduce__(self) -> tuple[Any, ...]:
        return (UserReward, (self.ref, self.base_dir, self.__name__, self.args))
