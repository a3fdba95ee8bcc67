"""A small pool of math-verify worker processes with a hard per-item timeout.

Design: N long-lived workers (`python -m rlr.rewards.math_check`, started on first use, ~0.5 s each, in
parallel). The parent keeps up to two items in each worker's pipe (so a worker never waits for the parent)
and waits with `select`; the item a worker is on must finish within `timeout_s` of its start, else the
worker is SIGKILLed and replaced, the item scores 0 with status "timeout", and the item queued behind it
is sent again to another worker. There is deliberately no in-process fast path: a hard timeout needs a
process that can be killed (a signal handler cannot interrupt sympy inside C code, and does not work off
the main thread), and a warm worker costs only a pipe write and read per item against 1-50 ms of
math-verify.
Workers are subprocesses rather than multiprocessing children so that nothing is forked from a threaded
trainer and no `__main__` re-import happens. A pool belongs to the process that created it; after a
fork the child makes its own.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlr.rewards.math_extract import MathSettings

logger = logging.getLogger(__name__)
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_DEPTH = 2  # items in flight per worker: the next one is already in the pipe when an answer goes back
_PIPE_SAFE_BYTES = 60_000  # below Linux's 64 KiB pipe buffer


class _Worker:
    def __init__(self, memory_mb: int):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        env.setdefault("OMP_NUM_THREADS", "1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rlr.rewards.math_check", str(memory_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a Ctrl-C in the terminal goes to the trainer, which then closes us
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.fd = self.proc.stdout.fileno()
        self.buffer = b""
        self.ready = False
        self.inflight: deque[int] = deque()  # items sent, answered in this order
        self.head_started = 0.0  # when the worker began the first in-flight item

    def can_take(self, line: bytes) -> bool:
        """Idle, or one item queued behind the current one when it fits the pipe buffer: a full pipe would
        block our write while the worker is stuck, and then nobody would enforce the timeout."""
        if not self.ready or len(self.inflight) >= _DEPTH:
            return False
        return not self.inflight or len(line) < _PIPE_SAFE_BYTES

    def send(self, item: int, line: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line)
        self.proc.stdin.flush()
        if not self.inflight:
            self.head_started = time.monotonic()
        self.inflight.append(item)

    def answered(self) -> int:
        self.head_started = time.monotonic()
        return self.inflight.popleft()

    def read_lines(self) -> list[bytes] | None:
        """Complete lines available now; None at EOF (the worker died)."""
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            return None
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        return lines

    def kill(self) -> None:
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


class MathVerifyPool:
    """Scores (completion, answer) pairs with math-verify in worker processes; thread-safe, one batch at a time."""

    def __init__(self, workers: int = 2, timeout_s: float = 5.0, memory_mb: int = 4096, start_timeout_s: float = 60):
        self.n_workers = max(1, workers)
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.start_timeout_s = start_timeout_s
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def score(self, pairs: Sequence[tuple[str, str]], timeout_s: float | None = None,
              settings: MathSettings | None = None) -> list[tuple[float, str]]:
        """(score, status) per pair, in order. Status: ok, no_answer, gold_unparseable, error, timeout."""
        if not pairs:
            return []
        # Identical completions are common in GRPO groups once a policy converges: verify each pair once.
        unique = list(dict.fromkeys(pairs))
        with self._lock:
            results = self._score(unique, self.timeout_s if timeout_s is None else timeout_s,
                                  (settings or MathSettings()).as_dict())
        scored = dict(zip(unique, results, strict=True))
        return [scored[pair] for pair in pairs]

    def _score(self, pairs: Sequence[tuple[str, str]], timeout_s: float,
               settings: dict[str, Any]) -> list[tuple[float, str]]:
        if self._pid != os.getpid():  # forked: the workers and their pipes belong to the parent
            self._workers, self._pid = [], os.getpid()
        while len(self._workers) < min(self.n_workers, len(pairs)):
            self._workers.append(self._start_worker())
        lines = [(json.dumps([i, c, a, settings]) + "\n").encode() for i, (c, a) in enumerate(pairs)]
        results: list[tuple[float, str] | None] = [None] * len(pairs)
        pending = deque(range(len(pairs)))
        started = time.monotonic()
        while pending or any(w.inflight for w in self._workers):
            for w in self._workers:
                while pending and w.can_take(lines[pending[0]]):
                    i = pending.popleft()
                    try:
                        w.send(i, lines[i])
                    except OSError:  # died between two items: resend everything it had
                        pending.appendleft(i)
                        self._replace(w, pending)
                        break
            now = time.monotonic()
            waits = [w.head_started + timeout_s - now for w in self._workers if w.inflight]
            if not any(w.ready for w in self._workers):
                if now - started > self.start_timeout_s:
                    raise RuntimeError("math-verify workers did not start; run `python -m rlr.rewards.math_check`")
                waits.append(0.5)
            readable, _, _ = select.select([w.fd for w in self._workers], [], [], max(0.0, min(waits, default=0.5)))
            for w in list(self._workers):
                if w.fd in readable:
                    self._read(w, results, pending)
                elif w.inflight and time.monotonic() > w.head_started + timeout_s:
                    item = w.inflight.popleft()
                    logger.debug("math-verify timed out on item %d; replacing its worker", item)
                    results[item] = (0.0, "timeout")
                    self._replace(w, pending)
        return [r if r is not None else (0.0, "error") for r in results]

    def _read(self, w: _Worker, results: list[tuple[float, str] | None], pending: deque[int]) -> None:
        lines = w.read_lines()
        if lines is None:  # died (e.g. killed by the OOM killer): its current item scores 0
            if not w.ready:
                self.close()
                raise RuntimeError(
                    "a math-verify worker exited while starting; run `python -m rlr.rewards.math_check` "
                    "to see why (is math-verify installed?)"
                )
            if w.inflight:
                results[w.inflight.popleft()] = (0.0, "error")
            self._replace(w, pending)
            return
        for line in lines:
            if line == b"ready":
                w.ready = True
                continue
            item, score, status = json.loads(line)
            if w.answered() != item:  # the protocol is strictly in order; anything else is a bug
                raise RuntimeError(f"math-verify worker answered item {item} out of order")
            results[item] = (float(score), status)

    def _start_worker(self) -> _Worker:
        return _Worker(self.memory_mb)

    def _replace(self, worker: _Worker, pending: deque[int]) -> None:
        """Kill a worker and start a fresh one; items it had queued but not begun go back to `pending`."""
        worker.kill()
        pending.extendleft(reversed(worker.inflight))
        worker.inflight.clear()
        self._workers[self._workers.index(worker)] = self._start_worker()

    def close(self) -> None:
        if self._pid == os.getpid():
            for w in self._workers:
                w.kill()
        self._workers = []


_default_pool: MathVerifyPool | None = None
_default_lock = threading.Lock()


def default_pool() -> MathVerifyPool:
    """The process-wide pool (workers = min(4, CPUs)); closed at exit."""
    global _default_pool
    with _default_lock:
        if _default_pool is None:
            workers = int(os.environ.get("RLR_MATH_WORKERS", min(4, os.cpu_count() or 1)))
            _default_pool = MathVerifyPool(workers=workers)
            atexit.register(_default_pool.close)
        return _default_pool
