"""Run untrusted (model-generated) Python in a separate, limited, short-lived process.

What is enforced, and where (see `SandboxResult.enforced` for what a given run actually got; the launcher's
docstring in `rlr.sandbox.launcher` has the details of the namespaces and the jail):

- Process: a fresh `python -I -S -B` (isolated mode: no user site, no PYTHON* env vars, no site-packages)
  in its own session / process group, stdin closed, no descriptors but 0-2 (`close_fds`; pipes a caller asks
  for with `pass_fds` only, as the judged runs of `rlr.sandbox.judge` do).
- Namespaces (`"network"`, `"pid_namespace"`): no network at all (a downed loopback only), and the code is
  PID 1 of its own pid namespace, so when the run ends every process it started dies with it (`setsid`
  and double forks included). Not root: a user namespace makes these possible where the kernel allows
  unprivileged user namespaces, and every capability is dropped in it (`"no_capabilities"`).
- Filesystem (`"jail"`): the root is a fresh, read-only tmpfs holding read-only system directories and the
  stdlib, /proc of its own pid namespace, and a writable /tmp: a tmpfs of `disk_mb`, the total disk quota of the
  run. No host directory is writable and no host socket is reachable; nothing written survives the run.
- Wall clock: the parent kills the process group at `timeout_s` (the relay and PID 1: the pid namespace
  takes the rest along); as root every process of the run's uid is swept too, as a second net.
- rlimits (set in the child before the code runs): CPU seconds, address space (`memory_mb`), file size
  (`max_file_mb`), open files, no core dumps, and processes (`max_processes`).
- Privileges: when the parent is root, the child drops to a fresh unprivileged uid (one per concurrent
  run, so sandboxes cannot signal or inspect each other or the judge, and RLIMIT_NPROC binds).
- Lifetime: the relay and the child get SIGKILL if their parent dies (PR_SET_PDEATHSIG; `"parent_death"`).
- Environment: a minimal allow-list (PATH, LANG, HOME/TMPDIR); no tokens or keys.
- Output: stdout/stderr are read incrementally; past `max_output_bytes` in total the process group is
  killed and the output truncated.

Fallbacks, when the kernel refuses the namespaces (no `"jail"` in `enforced`): the code runs in a temp dir
under the host's /tmp with RLIMIT_FSIZE per file but no total quota, can read world-readable host files and
connect to world-writable host sockets; as root the stdlib is reached through directory descriptors that stay
open, and only the uid sweep catches `setsid` escapees; not root, nothing catches them. The temp dir is then
removed by `remove_tree`, which never raises (deep trees, odd permissions).

Not enforced in any mode: seccomp syscall filters and CPU/memory cgroups (the rlimits are per process, so a
group of processes can use up to `max_processes` times the limits until the wall clock runs out).
"""

from __future__ import annotations

import glob
import json
import logging
import os
import random
import selectors
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

log = logging.getLogger(__name__)

_ENV_ALLOW = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
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


@dataclass
class Limits:
    """The per-run limits, as `run_code` takes them."""

    timeout_s: float = 5.0
    memory_mb: int = 512
    max_processes: int = 32
    max_file_mb: int = 16
    disk_mb: int = 64
    max_output_bytes: int = 1_000_000
    max_open_files: int = 256


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


_jail_paths: tuple[list[str], list[str]] | None = None


def jail_paths() -> tuple[list[str], list[str]]:
    """(read-only paths bound into the jail, package dirs hidden under them); computed once per process.

    The interpreter's prefix is bound whole (its stdlib, lib-dynload and shared library), with every
    site-packages / dist-packages under it or under /usr covered, so only the stdlib imports.
    """
    global _jail_paths
    if _jail_paths is None:
        prefixes = sorted({os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix)})
        ro = [d for d in _SYSTEM_DIRS if os.path.lexists(d)]
        ro += [p for p in prefixes if not any(p == d or p.startswith(d + "/") for d in ro)]
        hidden: set[str] = set()
        for base in [*prefixes, "/usr", "/usr/local"]:
            for pattern in ("lib/python3*/site-packages", "lib/python3*/dist-packages", "lib/python3/dist-packages",
                            "lib64/python3*/site-packages"):
                hidden.update(os.path.realpath(p) for p in glob.glob(os.path.join(base, pattern)))
        _jail_paths = (ro, sorted(hidden))
    return _jail_paths


def remove_tree(path: str) -> bool:
    """Remove a directory tree the sandboxed code may have shaped; True when it is gone. Never raises.

    Iterative and depth-free: each subdirectory is first renamed up to the top, so a tree 100,000 levels deep
    needs neither recursion nor long paths, and any error is counted, not raised.
    """
    try:
        top = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.unlink(path)
            return True
        except OSError:
            return False
    pending, counter, failures = ["."], 0, 0
    try:
        while pending:
            name = pending.pop()
            try:
                fd = top if name == "." else os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=top)
            except OSError:
                failures += 1
                continue
            try:
                with os.scandir(fd) as entries:
                    children = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
                for child, is_dir in children:
                    try:
                        if is_dir:
                            counter += 1
                            flat = f".rlr-rm-{counter}"
                            os.chmod(child, 0o700, dir_fd=fd, follow_symlinks=False)
                            os.rename(child, flat, src_dir_fd=fd, dst_dir_fd=top)
                            pending.append(flat)
                        else:
                            os.unlink(child, dir_fd=fd)
                    except (OSError, NotImplementedError):
                        failures += 1
            except OSError:
                failures += 1
            finally:
                if fd != top:
                    os.close(fd)
            if name != ".":
                try:
                    os.rmdir(name, dir_fd=top)
                except OSError:
                    pending.insert(0, name)  # a child renamed up after this one still had to go first
                    failures += 1
                    if failures > 10_000:
                        break
    except Exception as exc:  # noqa: BLE001 - cleanup must never stop the caller
        log.warning("sandbox cleanup of %s failed: %s", path, exc)
    finally:
        os.close(top)
    try:
        os.rmdir(path)
        return True
    except OSError as exc:
        log.warning("sandbox cleanup left %s behind: %s", path, exc)
        return False


@dataclass
class _Child:
    proc: subprocess.Popen
    uid: int | None
    workdir: str
    report_r: int
    start: float


def _spawn(code: str, limits: Limits, *, pass_fds: Sequence[int] = (), capture: bool = True) -> _Child:
    """Start `code` in a fresh sandbox child; the caller must `_reap` it."""
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
        nproc = limits.max_processes if as_root else _own_task_count() + limits.max_processes
        rlimits = {
            "RLIMIT_CPU": int(limits.timeout_s) + 1,
            "RLIMIT_AS": limits.memory_mb * 2**20,
            "RLIMIT_FSIZE": limits.max_file_mb * 2**20,
            "RLIMIT_NOFILE": limits.max_open_files,
            "RLIMIT_CORE": 0,
            "RLIMIT_NPROC": nproc,
        }
        ro_paths, hidden_paths = jail_paths()
        cfg = {"rlimits": rlimits, "uid": uid, "report_fd": report_w, "disk_mb": limits.disk_mb,
               "max_inodes": 20_000, "ro_paths": ro_paths, "hidden_paths": hidden_paths}
        env = {**_ENV_ALLOW, "HOME": workdir, "TMPDIR": workdir}
        out = subprocess.PIPE if capture else subprocess.DEVNULL
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-B", "-c", LAUNCHER_SOURCE, json.dumps(cfg)],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
            pass_fds=(report_w, *pass_fds),
        )
    except BaseException:
        os.close(report_r)
        os.close(report_w)
        remove_tree(workdir)
        if uid is not None:
            _release_uid(uid)
        raise
    os.close(report_w)
    return _Child(proc, uid, workdir, report_r, start)


def _reap(child: _Child) -> tuple[int, list[str]]:
    """Kill what is left of the run, wait, clean up; (returncode, enforced)."""
    try:
        os.killpg(child.proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    returncode = child.proc.wait()
    _kill_everything(child.proc.pid, child.uid)
    enforced = _read_report(child.report_r)
    os.close(child.report_r)
    if not remove_tree(child.workdir):
        log.warning("sandbox: could not remove %s", child.workdir)
    if child.uid is not None:
        _release_uid(child.uid)
    return returncode, enforced


def _result(child: _Child, returncode: int, enforced: list[str], out: bytes, err: bytes,
            killed_reason: str | None) -> SandboxResult:
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
        duration_s=time.monotonic() - child.start,
        enforced=enforced,
    )


def run_code(code: str, **limits: float) -> SandboxResult:
    """Run `code` as a Python program in a fresh sandboxed process and return what happened.

    Keyword limits are the fields of `Limits` (timeout_s, memory_mb, max_processes, max_file_mb, disk_mb,
    max_output_bytes, max_open_files).

    >>> run_code("print(6 * 7)").stdout
    '42\\n'
    """
    lim = Limits(**limits)  # type: ignore[arg-type]
    child = _spawn(code, lim)
    try:
        streams = _collect(child.proc, [child.proc.stdout, child.proc.stderr], child.start + lim.timeout_s,
                           lim.max_output_bytes)
    finally:
        returncode, enforced = _reap(child)
    (out, err), reason = streams
    return _result(child, returncode, enforced, out, err, reason)


def _collect(proc: subprocess.Popen, streams: list, deadline: float, cap: int,
             until_exit: bool = True) -> tuple[list[bytes], str | None]:
    """Read the streams (files or fds) until EOF, the deadline or the output cap, whichever comes first.

    With `until_exit`, stop shortly after `proc` exits even if a grandchild still holds a stream open.
    """
    fds = [s if isinstance(s, int) else s.fileno() for s in streams]
    bufs = {fd: bytearray() for fd in fds}
    total = 0
    reason: str | None = None
    with selectors.DefaultSelector() as sel:
        for fd in fds:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                reason = "timeout"
                break
            exited = proc.poll() is not None
            if exited and until_exit:
                remaining = min(remaining, 0.05)
            events = sel.select(timeout=min(remaining, 0.5))
            if not events and exited and until_exit:
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
    for s in streams:
        if not isinstance(s, int):
            s.close()
    return [bytes(bufs[fd]) for fd in fds], reason


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
        return list(pool.map(lambda c: run_code(c, **limits), codes))
