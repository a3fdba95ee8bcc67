"""What every reward call goes through during training: a time limit, a bounded stdout, and a check of its values.

Why: TRL calls reward functions in the training loop and trusts what they return. A user reward that never
returns hung `rlr train-rl` forever (manifest `running`, lock held); one returning NaN, inf or None for every row
let the run "complete" after training nothing (loss 0, grad_norm 0); one returning strings failed with
`ValueError: too many dimensions 'str'`, naming neither the reward nor the fix; one that printed megabytes broke
the `--json` promise (issue 21). The policy here:

- a call past `timeout_s`, or one that raises, scores its batch 0.0 with a warning naming the reward and the
  `<name>/failed_frac` metric; `max_failures` such calls in a row stop the run with one message (a reward that
  fails every time is broken, not flaky);
- a value that is not a finite number or None, or a list of the wrong length, stops the run at once: it is a bug
  in the reward, and training on it would teach the policy garbage;
- None for every row, `max_failures` calls in a row, stops the run: TRL would skip them all and train nothing;
- what the reward prints goes to stderr, the first `PRINT_LIMIT` characters per call.

The time limit uses SIGALRM when the call runs on the main thread (TRL's default); elsewhere it waits on a worker
thread, which cannot be killed: the stuck call is abandoned and keeps its thread.
"""

from __future__ import annotations

import contextlib
import io
import math
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from rlr.errors import UserError

PRINT_LIMIT = 2000


class RewardFailed(UserError):
    """A reward returned what training cannot use, or kept failing: the run stops with this one message."""


class _Timeout(Exception):
    pass


class _CappedText(io.TextIOBase):
    """A stdout replacement that keeps the first `limit` characters and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit, self.kept, self.dropped = limit, [], 0
        self._size = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        room = self.limit - self._size
        if room > 0:
            self.kept.append(text[:room])
            self._size += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def text(self) -> str:
        return "".join(self.kept)


def _with_alarm(func: Callable[[], Any], seconds: float) -> Any:
    def on_alarm(signum: int, frame: Any) -> None:
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return func()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _with_thread(func: Callable[[], Any], seconds: float) -> Any:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = func()
        except BaseException as e:  # re-raised on the caller's thread
            box["error"] = e

    worker = threading.Thread(target=target, daemon=True, name="rlr-reward")
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise _Timeout
    if "error" in box:
        raise box["error"]
    return box.get("value")


def call_with_timeout(func: Callable[[], Any], seconds: float | None) -> Any:
    if not seconds or seconds <= 0:
        return func()
    on_main = threading.current_thread() is threading.main_thread()
    timer_free = on_main and signal.getitimer(signal.ITIMER_REAL)[0] == 0
    return _with_alarm(func, seconds) if timer_free else _with_thread(func, seconds)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_values(name: str, values: Any, n: int) -> list[float | None]:
    """The reward's output as TRL needs it (n finite floats or None), else RewardFailed naming the fix."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise RewardFailed(f"reward {name!r} returned {type(values).__name__} {_describe(values)}; return a list "
                           "with one float (or None to skip) per completion")
    values = list(values)
    if len(values) != n:
        raise RewardFailed(f"reward {name!r} returned {len(values)} values for {n} completions; return one float "
                           "(or None to skip) per completion")
    out: list[float | None] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        if isinstance(v, (str, bytes)) or not (isinstance(v, (int, float)) or hasattr(v, "__float__")):
            raise RewardFailed(f"reward {name!r} returned {type(v).__name__} {_describe(v)} for completion {i} of "
                               f"{n}; return a float (or None to skip the row)")
        f = float(v)
        if not math.isfinite(f):
            raise RewardFailed(f"reward {name!r} returned {f} for completion {i} of {n}; non-finite rewards would "
                               "poison the advantages: return a finite float, or None to skip the row")
        out.append(f)
    return out


class GuardedReward:
    """A reward function under the policy above; keeps the wrapped reward's `__name__` and traits."""

    def __init__(self, func: Callable, timeout_s: float | None = 120.0, max_failures: int = 3) -> None:
        self.func, self.timeout_s, self.max_failures = func, timeout_s, max_failures
        self.__name__ = getattr(func, "__name__", type(func).__name__)
        self.measures_correctness = bool(getattr(func, "measures_correctness", False))
        self._failures = 0
        self._all_none = 0

    def __getattr__(self, item: str) -> Any:  # traits and args of the wrapped reward (e.g. for the logs)
        if item == "func":
            raise AttributeError(item)
        return getattr(self.func, item)

    def __call__(self, completions: list[Any], **kwargs: Any) -> list[float | None]:
        n = len(completions)
        captured = _CappedText(PRINT_LIMIT)
        try:
            with contextlib.redirect_stdout(captured):
                values = call_with_timeout(lambda: self.func(completions, **kwargs), self.timeout_s)
        except (_Timeout, Exception) as e:
            if isinstance(e, RewardFailed):
                raise
            return self._failed(n, e, kwargs.get("log_metric"))
        finally:
            self._echo(captured)
        out = check_values(self.__name__, values, n)
        self._failures = 0
        self._all_none = self._all_none + 1 if n and all(v is None for v in out) else 0
        if self._all_none >= self.max_failures:
            raise RewardFailed(f"reward {self.__name__!r} returned None for every completion in {self._all_none} "
                               "batches in a row, so TRL trains on nothing; check that the columns it reads (e.g. "
                               "answer) are in the data, or drop it from rewards")
        self._log(kwargs.get("log_metric"), 0.0)
        return out

    def _failed(self, n: int, error: BaseException, log_metric: Any) -> list[float | None]:
        self._failures += 1
        what = (f"took longer than {self.timeout_s:g} s" if isinstance(error, _Timeout)
                else f"raised {type(error).__name__}: {str(error)[:200]}")
        fix = ("raise its timeout_s in rewards" if isinstance(error, _Timeout) else "fix the reward")
        if self._failures >= self.max_failures:
            raise RewardFailed(f"reward {self.__name__!r} {what}, {self._failures} calls in a row; {fix}") from None
        from rlr.console import stderr

        stderr.print(f"[yellow]reward {self.__name__!r} {what}; this batch of {n} scores 0.0 "
                     f"({self._failures}/{self.max_failures} before the run stops)[/yellow]", highlight=False)
        self._log(log_metric, 1.0)
        return [0.0] * n

    def _log(self, log_metric: Any, failed: float) -> None:
        if callable(log_metric):
            log_metric(f"{self.__name__}/failed_frac", failed)

    def _echo(self, captured: _CappedText) -> None:
        text = captured.text()
        if text:
            more = f"\n[{captured.dropped} more characters dropped]" if captured.dropped else ""
            sys.stderr.write(f"[reward {self.__name__} printed]\n{text}{more}\n")

    def __reduce__(self) -> tuple[Any, ...]:
        return (GuardedReward, (self.func, self.timeout_s, self.max_failures))
