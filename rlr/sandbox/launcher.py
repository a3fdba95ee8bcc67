"""The first code that runs inside a sandbox child, before the untrusted program.

It is passed to `python -I -S -B -c` as source text rather than run through `preexec_fn`, because
`preexec_fn` is unsafe when the parent has threads (torch, tokenizers and the TRL trainer all start some):
a fork of a threaded process may deadlock on a lock held by another thread. Here the child is a fresh
interpreter, so it may import, call libc and set limits freely.

Order matters: the network namespace and the rlimits need root (or nothing), the uid drop comes last,
and the stdlib directories are opened as file descriptors before the drop because the interpreter may
live under a directory the sandbox uid cannot enter (e.g. pyenv under /root, mode 0700). Paths under
`/proc/self/fd/N` resolve from the open directory, so imports keep working without opening up `/root`.
As root it also gets a mount namespace with fresh tmpfs over /tmp, /var/tmp and /dev/shm (the places an
unprivileged uid could write to or read other runs' files from); the working directory was entered before,
so it stays reachable through the cwd. The untrusted program then runs in this same process (no second
interpreter start: ~15 ms saved).
"""

from __future__ import annotations

LAUNCHER_SOURCE = r"""
import sys


def _private_tmp(libc, size_mb, enforced):
    import os

    if libc.unshare(0x00020000) != 0:  # CLONE_NEWNS: a mount namespace of our own
        return
    # Make every mount private first, so the tmpfs below cannot propagate back to the host's namespace.
    if libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None) != 0:  # MS_REC | MS_PRIVATE
        return
    for path in (b"/tmp", b"/var/tmp", b"/dev/shm"):  # the world-writable places a uid could leave files in
        options = b"size=%dm,mode=1777" % size_mb
        if os.path.isdir(path) and libc.mount(b"tmpfs", path, b"tmpfs", 0x2 | 0x4, options) != 0:  # NOSUID|NODEV
            return
    enforced.append("private_tmp")  # the cwd (under the host /tmp) stays reachable: it was entered before


def _setup(cfg):
    import ctypes, json, os, resource
    enforced = []
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        flags = 0x40000000  # CLONE_NEWNET: a namespace with only a downed loopback, so no network at all
        if os.getuid() != 0:
            flags |= 0x10000000  # CLONE_NEWUSER lets an unprivileged user create the network namespace
        if libc.unshare(flags) == 0:
            enforced.append("network")
    except Exception:
        pass
    if os.getuid() == 0:
        try:
            _private_tmp(libc, cfg["tmpfs_mb"], enforced)
        except Exception:
            pass
    for name, value in cfg["rlimits"].items():
        try:
            resource.setrlimit(getattr(resource, name), (value, value))
            enforced.append(name)
        except (ValueError, OSError):
            pass
    uid = cfg["uid"]
    if uid is not None:
        moved = {}
        for p in sys.path:
            if os.path.isdir(p):
                moved[p] = "/proc/self/fd/%d" % os.open(p, os.O_RDONLY | os.O_DIRECTORY)
        sys.path[:] = list(moved.values())
        sys.path_importer_cache.clear()
        for module in list(sys.modules.values()):  # packages imported so far (collections, encodings...)
            search = getattr(module, "__path__", None)
            if isinstance(search, list):
                for i, entry in enumerate(search):
                    for old, new in moved.items():
                        if entry.startswith(old + "/"):
                            search[i] = new + entry[len(old):]
        os.setgroups([])
        for candidate in (uid, 65534):  # a uid outside a user namespace's map fails: fall back to nobody
            try:
                os.setgid(candidate)
                os.setuid(candidate)
                enforced.append("uid" if candidate == uid else "uid_nobody")  # nobody: shared, not swept
                break
            except OSError:
                pass
        else:
            sys.stderr.write("rlr sandbox: could not drop root privileges; refusing to run the code\n")
            os._exit(125)
    try:  # die with the parent (set after the uid change, which clears it); grandchildren are swept instead
        if libc.prctl(1, 9, 0, 0, 0) == 0:  # PR_SET_PDEATHSIG, SIGKILL
            enforced.append("parent_death")
    except Exception:
        pass
    os.write(cfg["report_fd"], json.dumps(enforced).encode())
    os.close(cfg["report_fd"])


import json as _json
_setup(_json.loads(sys.argv[1]))
del _setup, _json
sys.argv[:] = ["main.py"]
with open("main.py", encoding="utf-8") as _f:
    _code = compile(_f.read(), "main.py", "exec")
import os as _os

_os.unlink("main.py")  # the program text (which may include a test harness) is not left for the code to read
del _f, _os
exec(_code, {"__name__": "__main__", "__file__": "main.py", "__builtins__": __builtins__})
"""
