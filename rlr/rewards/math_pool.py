"""A small pool of math-verify worker processes with a hard per-item timeout.

Design: N long-lived workers (`python -m rlr.rewards.math_check`, started on first use, ~0.5 s each, in
parallel). The parent hands one item at a time to each idle worker over a pipe and waits with `select`;
an item that overruns `timeout_s` gets its worker SIGKILLed and replaced, and scores 0 with status
"timeout". There is deliberately no in-process fast path: a hard timeout needs a process that can be
killed (a signal handler cannot interrupt sympy inside C code, and does not work off the main thread),
and a warm worker costs only a pipe round trip (~0.1 ms) per item against 1-50 ms of math-verify.
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

logger = logging.getLogger(__name__)
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


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
        self.item: int | None = None
        self.deadline = 0.0

    def send(self, item: int, completion: str, answer: str, timeout_s: float) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps([item, completion, answer]) + "\n").encode())
        self.proc.stdin.flush()
        self.item, self.deadline = item, time.monotonic() + timeout_s

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

    def score(self, pairs: Sequence[tuple[str, str]], timeout_s: float | None = None) -> list[tuple[float, str]]:
        """(score, status) per pair, in order. Status: ok, no_answer, error, timeout."""
        if not pairs:
            return []
        # Identical completions are common in GRPO groups once a policy converges: verify each pair once.
        unique = list(dict.fromkeys(pairs))
        with self._lock:
            results = self._score(unique, self.timeout_s if timeout_s is None else timeout_s)
        scored = dict(zip(unique, results, strict=True))
        return [scored[pair] for pair in pairs]

    def _score(self, pairs: Sequence[tuple[str, str]], timeout_s: float) -> list[tuple[float, str]]:
        if self._pid != os.getpid():  # forked: the workers and their pipes belong to the parent
            self._workers, self._pid = [], os.getpid()
        while len(self._workers) < min(self.n_workers, len(pairs)):
            self._workers.append(self._start_worker())
        results: list[tuple[float, str] | None] = [None] * len(pairs)
        pending = deque(range(len(pairs)))
        started = time.monotonic()
        while pending or any(w.item is not None for w in self._workers):
            for w in self._workers:
                if w.ready and w.item is None and pending:
                    i = pending.popleft()
                    try:
                        w.send(i, pairs[i][0], pairs[i][1], timeout_s)
                    except (BrokenPipeError, OSError):
                        pending.appendleft(i)
                        self._replace(w)
            now = time.monotonic()
            waits = [w.deadline - now for w in self._workers if w.item is not None]
            if not any(w.ready for w in self._workers):
                if now - started > self.start_timeout_s:
                    raise RuntimeError("math-verify workers did not start; run `python -m rlr.rewards.math_check`")
                waits.append(0.5)
            readable, _, _ = select.select([w.fd for w in self._workers], [], [], max(0.0, min(waits, default=0.5)))
            for w in list(self._workers):
                if w.fd in readable:
                    lines = w.read_lines()
                    if lines is None:  # died (e.g. killed by the OOM killer): its item scores 0
                        if not w.ready:
                            self.close()
                            raise RuntimeError(
                                "a math-verify worker exited while starting; run `python -m rlr.rewards.math_check` "
                                "to see why (is math-verify installed?)"
                            )
                        if w.item is not None:
                            results[w.item] = (0.0, "error")
                        self._replace(w)
                        continue
                    for line in lines:
                        if line == b"ready":
                            w.ready = True
                        else:
                            item, score, status = json.loads(line)
                            results[item] = (float(score), status)
                            w.item = None
                elif w.item is not None and time.monotonic() > w.deadline:
                    logger.debug("math-verify timed out on item %d; replacing its worker", w.item)
                    results[w.item] = (0.0, "timeout")
                    self._replace(w)
        return [r if r is not None else (0.0, "error") for r in results]

    def _start_worker(self) -> _Worker:
        return _Worker(self.memory_mb)

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
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
