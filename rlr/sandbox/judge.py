"""Judged runs: the verdict is reached in a process the code under test cannot reach.

Two sandboxes per verdict (both `rlr.sandbox.runner` children, each with its own uid, pid namespace and jail):

- the *candidate* runs the untrusted program, then serves requests over a pipe: "the value of global X",
  "call handle 3 with these arguments", "item / attribute / iterator / length of handle 5". Every answer is
  plain data (see `rlr.sandbox.wire`) or an opaque handle. Its stdout and stderr go nowhere: nothing it prints
  is read by anyone.
- the *judge* runs the tests (trusted: they come from the dataset or the benchmark) in its own interpreter.
  Names the tests use that the tests do not define are looked up in the candidate and arrive as plain values
  or as `Remote` handles. A `Remote` can be called, indexed, iterated and measured, but comparing, hashing or
  truth-testing one raises `TypeError`: an answer only counts when it is plain data the judge compares with
  its own `==`. The judge writes one verdict line per test to a pipe only the parent reads.

So the tests (and their expected values) never enter the candidate's process, the candidate's monkeypatching
(`exec`, `builtins`, `sys.setprofile`, `sys.stdout`, `unittest`, `atexit`, `os._exit`) happens in a process
whose exit status and output decide nothing, and an always-equal object is only a handle. What remains:
tests must call the code with plain data (no callbacks; an argument the code mutates in place is a copy, the
judge does not see the mutation), and a candidate that reproduces the expected values legitimately
(or by learning them from the arguments a test passes) passes, as it should.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from rlr.sandbox.runner import Limits, _collect, _reap, _spawn

log = logging.getLogger(__name__)


def _wire_source() -> str:
    text = (Path(__file__).parent / "wire.py").read_text(encoding="utf-8")
    return text.replace("from __future__ import annotations\n", "")


_SERVER = r"""


def __rlr_serve(req_fd, rep_fd, space, wire_source):
    # Answers the judge. Runs after the program, in its globals; it decides nothing, so tampering with it
    # (the program may) can only make it answer wrongly, which fails the tests.
    import signal

    wire = {}
    exec(wire_source, wire)
    handles = []

    def expire(signum, frame):
        raise TimeoutError("the test ran past its time limit")

    signal.signal(signal.SIGALRM, expire)

    def register(obj):
        handles.append(obj)
        return len(handles) - 1

    def resolve(h):
        return handles[h]

    while True:
        try:
            msg = wire["recv"](req_fd)
        except Exception:
            return
        try:
            if type(msg.get("t")) is float:  # what is left of the test's time limit: a hung call fails that test
                signal.setitimer(signal.ITIMER_REAL, msg["t"])
            op = msg["op"]
            if op == "hello":  # the program ran to its end: the tests may begin
                value = None
            elif op == "get":
                if msg["name"] not in space:
                    raise NameError("name %%r is not defined" %% msg["name"])
                value = space[msg["name"]]
            else:
                target = handles[msg["h"]]
                if op == "call":
                    value = target(*wire["decode"](msg["args"], resolve), **wire["decode"](msg["kwargs"], resolve))
                elif op == "attr":
                    value = getattr(target, msg["name"])
                elif op == "item":
                    value = target[wire["decode"](msg["key"], resolve)]
                elif op == "iter":
                    value = iter(target)
                elif op == "next":
                    value = next(target)
                elif op == "len":
                    value = len(target)
                else:
                    raise ValueError("unknown request %%r" %% op)
            signal.setitimer(signal.ITIMER_REAL, 0)
            reply = {"ok": wire["encode"](value, register)}
        except BaseException as exc:
            signal.setitimer(signal.ITIMER_REAL, 0)
            try:
                text = str(exc)[:500]
            except BaseException:
                text = ""
            reply = {"err": [type(exc).__name__, text]}
        wire["send"](rep_fd, reply)


__rlr_serve(%(req)d, %(rep)d, globals(), %(wire)r)
"""

_JUDGE = r"""
import ast, builtins, json, os, signal, sys, time

_WIRE = {}
exec(%(wire)r, _WIRE)
_SPEC = json.loads(%(spec)r)
_REQ, _REP, _VERDICT = %(req)d, %(rep)d, %(verdict)d
_LIMIT = _SPEC["test_timeout"]  # seconds per test, or None
_GRACE = 0.5  # the candidate stops a hung call itself at the limit; the judge's own alarm is the backstop
_gone = []
_deadline = []


class _TestTimeout(BaseException):
    pass


def _expire(signum, frame):
    raise _TestTimeout()


if _LIMIT:
    signal.signal(signal.SIGALRM, _expire)


class RemoteError(Exception):
    '''What the code under test raised (when not a builtin exception), or that it is gone.'''


def _register(value):
    if type(value) is Remote:
        return object.__getattribute__(value, "_h")
    raise TypeError("only plain data and the code's own objects can be passed to it, not %%s" %% type(value).__name__)


def _ask(message):
    if _gone:
        raise RemoteError("the code under test is gone")
    if _deadline:
        message["t"] = max(0.001, _deadline[0] - time.monotonic())
    try:
        _WIRE["send"](_REQ, message)
        reply = _WIRE["recv"](_REP)
    except (OSError, EOFError, ValueError, RecursionError) as exc:
        _gone.append(True)
        raise RemoteError("the code under test is gone (%%s)" %% exc) from None
    if type(reply) is dict and "ok" in reply:
        return _WIRE["decode"](reply["ok"], Remote)
    err = reply.get("err") if type(reply) is dict else None
    if not (type(err) is list and len(err) == 2 and type(err[0]) is str and type(err[1]) is str):
        raise RemoteError("malformed reply")
    cls = getattr(builtins, err[0], None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            exc = cls(err[1])
        except Exception:
            exc = RemoteError("%%s: %%s" %% tuple(err))
    else:
        exc = RemoteError("%%s: %%s" %% tuple(err))
    raise exc


def _not_plain(*args, **kwargs):
    raise TypeError("the code under test returned an object that is not plain data; it cannot be compared, "
                    "hashed or tested for truth")


class Remote:
    __slots__ = ("_h",)

    def __init__(self, handle):
        object.__setattr__(self, "_h", handle)

    def __call__(self, *args, **kwargs):
        return _ask({"op": "call", "h": self._h, "args": _WIRE["encode"](list(args), _register),
                     "kwargs": _WIRE["encode"](dict(kwargs), _register)})

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _ask({"op": "attr", "h": self._h, "name": name})

    def __getitem__(self, key):
        return _ask({"op": "item", "h": self._h, "key": _WIRE["encode"](key, _register)})

    def __iter__(self):
        return _ask({"op": "iter", "h": self._h})

    def __next__(self):
        return _ask({"op": "next", "h": self._h})

    def __len__(self):
        n = _ask({"op": "len", "h": self._h})
        if type(n) is not int:
            raise TypeError("len() of the code's object is not an int")
        return n

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __bool__ = __hash__ = __contains__ = _not_plain
    __int__ = __float__ = __index__ = __complex__ = __setattr__ = __setitem__ = _not_plain

    def __repr__(self):
        return "<object #%%d of the code under test>" %% self._h


_G = {"__name__": "__rlr_judge__", "__builtins__": builtins, "RemoteError": RemoteError}
_BUILTIN_NAMES = set(dir(builtins))


def _lookup(name):
    try:
        _G[name] = _ask({"op": "get", "name": name})
    except NameError:
        _G.pop(name, None)


def _resolve(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in _G and node.id not in _BUILTIN_NAMES:
            _lookup(node.id)


def _verdict(index, ok, error):
    line = json.dumps({"i": index, "ok": ok, "error": error}) + "\n"
    os.write(_VERDICT, line.encode())


def _describe(exc):
    try:
        return ("%%s: %%s" %% (type(exc).__name__, exc))[:300]
    except BaseException:
        return type(exc).__name__


def _main():
    setup_error = None
    try:  # nothing counts unless the program itself ran to its end (a crash or endless loop fails every test)
        _ask({"op": "hello"})
    except BaseException as exc:
        setup_error = "the program did not finish: " + _describe(exc)
    try:
        if not setup_error and _SPEC["setup"]:
            exec(compile(_SPEC["setup"], "<setup>", "exec"), _G)
        for name in _SPEC["remote"] if not setup_error else ():
            _G.pop(name, None)
            _lookup(name)
    except BaseException as exc:
        setup_error = "setup: " + _describe(exc)
    for index, test in enumerate(_SPEC["tests"]):
        if setup_error:
            _verdict(index, False, setup_error)
            continue
        try:
            tree = ast.parse(test, "<test %%d>" %% index)
            if _LIMIT:
                _deadline[:] = [time.monotonic() + _LIMIT]
                signal.setitimer(signal.ITIMER_REAL, _LIMIT + _GRACE)
            _resolve(tree)
            exec(compile(tree, "<test %%d>" %% index, "exec"), _G)
            ok, error = True, None
        except _TestTimeout:
            # the code did not stop a hung call itself: its replies are out of step now, so it is done
            _gone.append(True)
            ok, error = False, "the test ran past its time limit (%%gs) and the code stopped answering" %% _LIMIT
        except TimeoutError as exc:
            ok, error = False, "the test ran past its time limit (%%gs): %%s" %% (_LIMIT, _describe(exc))
        except BaseException as exc:
            ok, error = False, _describe(exc)
        finally:
            if _LIMIT:
                signal.setitimer(signal.ITIMER_REAL, 0)
                _deadline[:] = []
        _verdict(index, ok, error)
    os.close(_REQ)  # the candidate's server sees EOF and the program ends


_main()
"""


@dataclass
class JudgedResult:
    """Per-test verdicts of one judged run; `passed[i]` is True only when the judge saw test i succeed."""

    passed: list[bool]
    errors: list[str | None]
    timed_out: bool = False
    duration_s: float = 0.0
    candidate_enforced: list[str] = field(default_factory=list)
    judge_enforced: list[str] = field(default_factory=list)
    judge_stderr: str = ""

    @property
    def fraction(self) -> float:
        return sum(self.passed) / len(self.passed) if self.passed else 0.0


def _parse_verdicts(data: bytes, n: int) -> tuple[list[bool], list[str | None]]:
    passed: list[bool] = [False] * n
    errors: list[str | None] = ["no verdict (timeout or crash)"] * n
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            item = json.loads(line)
            index = item["i"]
            if type(index) is int and 0 <= index < n:
                passed[index] = item["ok"] is True
                errors[index] = None if passed[index] else str(item.get("error"))
        except (ValueError, KeyError, TypeError):
            continue
    return passed, errors


def run_judged(program: str, tests: Sequence[str], *, setup: str = "", remote: Sequence[str] = (),
               test_timeout_s: float | None = None, **limits: float) -> JudgedResult:
    """Run `program` in one sandbox and `tests` (statements; an exception fails one) against it in another.

    `test_timeout_s` limits each test (the calls it makes into the code included): a test past it fails and the
    next one starts, so one hung case does not take the rest down with it; `timeout_s` stays the limit of the whole
    run. A candidate that defeats its side of the limit (ignores SIGALRM) fails every test after that one.

    `setup` is trusted code the judge runs first (e.g. a benchmark's helper functions and its `check`);
    `remote` names globals that must come from the program even when `setup` defines them too (a HumanEval
    prompt defines a stub of the very function under test).
    """
    lim = Limits(**limits)  # type: ignore[arg-type]
    tests = [str(t) for t in tests]
    if test_timeout_s is not None and not test_timeout_s > 0:
        raise ValueError(f"test_timeout_s must be > 0, got {test_timeout_s}")
    spec = json.dumps({"setup": setup, "tests": tests, "remote": list(remote),
                       "test_timeout": None if test_timeout_s is None else float(test_timeout_s)})
    wire = _wire_source()
    fds: list[int] = []
    children = []
    try:
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        verdict_r, verdict_w = os.pipe()
        fds += [req_r, req_w, rep_r, rep_w, verdict_w]
        candidate = _spawn(program + _SERVER % {"req": req_r, "rep": rep_w, "wire": wire}, lim,
                           pass_fds=(req_r, rep_w), capture=False)
        children.append(candidate)
        judge = _spawn(_JUDGE % {"wire": wire, "spec": spec, "req": req_w, "rep": rep_r, "verdict": verdict_w},
                       lim, pass_fds=(req_w, rep_r, verdict_w))
        children.append(judge)
        for fd in fds:  # only the two children hold the channel now: each sees EOF when the other is gone
            os.close(fd)
        fds = [verdict_r]
        (_, err, verdicts), reason = _collect(judge.proc, [judge.proc.stdout, judge.proc.stderr, verdict_r],
                                              judge.start + lim.timeout_s, lim.max_output_bytes)
    finally:
        for fd in fds:
            os.close(fd)
        reaped = [_reap(child) for child in children]
    passed, errors = _parse_verdicts(verdicts, len(tests))
    return JudgedResult(passed=passed, errors=errors, timed_out=reason == "timeout",
                        duration_s=time.monotonic() - candidate.start,
                        candidate_enforced=reaped[0][1], judge_enforced=reaped[1][1],
                        judge_stderr=err.decode("utf-8", errors="replace")[-2000:])


@dataclass
class JudgedJob:
    program: str
    tests: list[str]
    setup: str = ""
    remote: list[str] = field(default_factory=list)
    test_timeout_s: float | None = None


def run_judged_many(jobs: Sequence[JudgedJob], *, workers: int = 2, **limits: float) -> list[JudgedResult | None]:
    """Judge several programs concurrently, results in input order; a run that fails internally is None (logged)."""

    def one(job: JudgedJob) -> JudgedResult | None:
        try:
            return run_judged(job.program, job.tests, setup=job.setup, remote=job.remote,
                              test_timeout_s=job.test_timeout_s, **limits)
        except Exception:  # noqa: BLE001 - a broken run scores 0; it must never stop training
            log.exception("sandbox: a judged run failed internally; it scores 0")
            return None

    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs)))) as pool:
        return list(pool.map(one, jobs))
