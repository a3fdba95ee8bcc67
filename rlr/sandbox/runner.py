"""Run untrusted (model-generated) Python in a separate, limited, short-lived process.

What is enforced, and where (see `SandboxResult.enforced` for what a given run actually got):

- Process: a fresh `python -I -S -B` (isolated mode: no user site, no PYTHON* env vars, no site-packages,
  so only the stdlib can be imported) in its own session / process group, stdin closed.
- Wall clock: the parent kills the whole process group at `timeout_s`; when the code ran under its own uid
  (root parent), every process of that uid is killed too, which catches grandchildren that called
  `setsid()` to leave the group.
- rlimits (set in the child before the code runs): CPU seconds, address space (`memory_mb`), file size
  (`max_file_mb`), open files, no core dumps, and processes (`max_processes`).
- Privileges: when the parent is root, the child drops to a fresh unprivileged uid (one per concurrent
  run, so sandboxes cannot signal each other and RLIMIT_NPROC binds; root ignores RLIMIT_NPROC). That uid
  cannot signal the parent, read `/proc/<parent>/environ`, or write outside its temp dir. It also gets a
  mount namespace where /tmp, /var/tmp and /dev/shm are fresh tmpfs of `max_file_mb` each (`"private_tmp"`),
  so nothing is left behind in world-writable places and runs cannot see each other. Not root: no uid drop,
  so the code could signal processes of the same user, and a grandchild that calls `setsid()` escapes the
  group kill; RLIMIT_NPROC is then the user's current task count (threads included) plus `max_processes`.
  Where the fresh uid is outside a user namespace's map, the child falls back to `nobody` (`"uid_nobody"`,
  shared between runs and not swept).
- Network: a new network namespace (`unshare(CLONE_NEWNET)`, plus CLONE_NEWUSER when not root) has only a
  downed loopback, so even 127.0.0.1 is unreachable. If the kernel refuses, the run goes on with network
  and `"network"` is missing from `enforced`.
- Lifetime: the child gets SIGKILL if the parent dies (PR_SET_PDEATHSIG; `"parent_death"`).
- Environment: a minimal allow-list (PATH, LANG, HOME/TMPDIR = the temp dir); no tokens or keys.
- Files: a fresh temp dir as cwd and HOME, removed afterwards.
- Output: stdout/stderr are read incrementally; past `max_output_bytes` in total the process group is
  killed and the output truncated.

Not enforced: a read-only or hidden filesystem (world-readable files stay readable), seccomp syscall
filters, and CPU/memory cgroups (the rlimits are per process, so a group of processes can use up to
`max_processes` times the limits until the wall clock runs out).
"""

from __future__ import annotations

import json
import os
import random
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from rlr.sandbox.launcher import LAUNCHER_SOURCE

_ENV_ALLOW = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
_uids_in_use: set[int] = set()
_uid_lock = threading.Lock()


@dataclass
class SandboxResult:
    """Outcome of one sandboxed run. `ok` means exit code 0, within every limit."""

    ok: bool
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool = False
    killed_reason: str | None = None  # "timeout", "output_limit", "cpu_limit", "signal:<n>" or None
    duration_s: float = 0.0
    enforced: list[str] = field(default_factory=list)  # what the child managed to set up (see module doc)


def _claim_uid() -> int:
    """A uid no other concurrent run of this process uses; random to make clashes between processes unlikely."""
    with _uid_lock:
        while True:
            uid = random.randrange(200_000, 2_000_000)
            if uid not in _uids_in_use:
                _uids_in_use.add(uid)
                return uid


def _release_uid(uid: int) -> None:
    with _uid_lock:
        _uids_in_use.discard(uid)


def _pids_of_uid(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid != uid:
                    continue
                with open(f"/proc/{entry}/stat", "rb") as f:
                    state = f.read().rpartition(b")")[2].split()[0]
            except (OSError, IndexError):
                continue
            if state not in (b"Z", b"X"):  # zombies are dead already; their reaper may be a PID 1 that never reaps
                pids.append(int(entry))
    return pids


def _kill_everything(pgid: int, uid: int | None) -> None:
    """SIGKILL the process group, then (uid runs) every process left with that uid, until none is."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if uid is None:
        return
    for _ in range(100):  # a fork bomb may still be forking while we sweep; RLIMIT_NPROC bounds it
        pids = _pids_of_uid(uid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.002)


def _own_task_count() -> int:
    """Tasks (threads included: RLIMIT_NPROC counts them) of this user, so a non-root limit leaves room."""
    count = 0
    for pid in _pids_of_uid(os.getuid()):
        try:
            count += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            pass
    return count


def run_code(
    code: str,
    *,
    timeout_s: float = 5.0,
    memory_mb: int = 512,
    max_processes: int = 32,
    max_file_mb: int = 16,
    max_output_bytes: int = 1_000_000,
    max_open_files: int = 256,
) -> SandboxResult:
    """Run `code` as a Python program in a fresh sandboxed process and return what happened.

    >>> run_code("print(6 * 7)").stdout
    '42\\n'
    """
    start = time.monotonic()
    as_root = os.getuid() == 0
    uid = _claim_uid() if as_root else None
    workdir = tempfile.mkdtemp(prefix="rlr-sandbox-")
    report_r, report_w = os.pipe()
    try:
        with open(os.path.join(workdir, "main.py"), "w", encoding="utf-8") as f:
            f.write(code)
        if uid is not None:
            os.chown(workdir, uid, uid)
            os.chown(os.path.join(workdir, "main.py"), uid, uid)
        nproc = max_processes if as_root else _own_task_count() + max_processes
        rlimits = {
            "RLIMIT_CPU": int(timeout_s) + 1,
            "RLIMIT_AS": memory_mb * 2**20,
            "RLIMIT_FSIZE": max_file_mb * 2**20,
            "RLIMIT_NOFILE": max_open_files,
            "RLIMIT_CORE": 0,
            "RLIMIT_NPROC": nproc,
        }
        cfg = {"rlimits": rlimits, "uid": uid, "report_fd": report_w, "tmpfs_mb": max_file_mb}
        env = {**_ENV_ALLOW, "HOME": workdir, "TMPDIR": workdir}
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-B", "-c", LAUNCHER_SOURCE, json.dumps(cfg)],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            pass_fds=(report_w,),
        )
        os.close(report_w)
        report_w = -1
        out, err, killed_reason = _collect(proc, start + timeout_s, max_output_bytes)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        returncode = proc.wait()
        _kill_everything(proc.pid, uid)
        enforced = _read_report(report_r)
    finally:
        if report_w >= 0:
            os.close(report_w)
        os.close(report_r)
        shutil.rmtree(workdir, ignore_errors=True)
        if uid is not None:
            _release_uid(uid)
    if killed_reason is None and returncode in (-signal.SIGXCPU, -signal.SIGKILL) and "RLIMIT_CPU" in enforced:
        killed_reason = "cpu_limit" if returncode == -signal.SIGXCPU else "signal:9"
    elif killed_reason is None and returncode is not None and returncode < 0:
        killed_reason = f"signal:{-returncode}"
    return SandboxResult(
        ok=returncode == 0 and killed_reason is None,
        returncode=returncode,
        stdout=out.decode("utf-8", errors="replace"),
        stderr=err.decode("utf-8", errors="replace"),
        timed_out=killed_reason == "timeout",
        killed_reason=killed_reason,
        duration_s=time.monotonic() - start,
        enforced=enforced,
    )


def _collect(proc: subprocess.Popen, deadline: float, cap: int) -> tuple[bytes, bytes, str | None]:
    """Read both pipes until EOF, the deadline or the output cap, whichever comes first."""
    assert proc.stdout is not None and proc.stderr is not None
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    bufs = {out_fd: bytearray(), err_fd: bytearray()}
    total = 0
    reason: str | None = None
    with selectors.DefaultSelector() as sel:
        for stream in (proc.stdout, proc.stderr):
            sel.register(stream.fileno(), selectors.EVENT_READ)
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                reason = "timeout"
                break
            # When the main process has exited, a grandchild may still hold the pipes open: stop waiting.
            if proc.poll() is not None:
                remaining = min(remaining, 0.05)
            events = sel.select(timeout=min(remaining, 0.5))
            if not events and proc.poll() is not None:
                break
            for key, _ in events:
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                take = chunk[: max(0, cap - total)]
                bufs[key.fd] += take
                total += len(chunk)
                if total > cap:
                    reason = "output_limit"
            if reason:
                break
    proc.stdout.close()
    proc.stderr.close()
    return bytes(bufs[out_fd]), bytes(bufs[err_fd]), reason


def _read_report(fd: int) -> list[str]:
    try:
        data = os.read(fd, 4096)
        return list(json.loads(data)) if data else []
    except (OSError, ValueError):
        return []


def run_many(codes: Sequence[str], *, workers: int = 2, **limits: float) -> list[SandboxResult]:
    """Run several programs concurrently (threads only wait on child processes), results in input order."""
    if not codes:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(codes)))) as pool:
        return list(pool.map(lambda c: run_code(c, **limits), codes))  # type: ignore[arg-type]
