"""The first code that runs inside a sandbox child, before the untrusted program.

It is passed to `python -I -S -B -c` as source text rather than run through `preexec_fn`, because
`preexec_fn` is unsafe when the parent has threads (torch, tokenizers and the TRL trainer all start some):
a fork of a threaded process may deadlock on a lock held by another thread. Here the child is a fresh,
single-threaded interpreter, so it may import, call libc, fork and set limits freely.

What it builds, in order (each step that the kernel refuses is left out of the `enforced` report):

1. `unshare` new mount, pid and network namespaces (plus a user namespace when not root, which is what lets
   an unprivileged user create the others). The network namespace has only a downed loopback.
2. `fork`: the child is PID 1 of the new pid namespace. When it dies the kernel kills every process left
   in the namespace, so nothing the code starts (`setsid`, double forks) can outlive the run. The launcher
   stays outside as a relay: it waits and exits with the child's status (or dies of the same signal).
3. In the child, a jail (`"jail"`): a fresh tmpfs becomes the root (`pivot_root`, the old root detached,
   the skeleton made read-only): read-only binds of the system directories and of the interpreter's prefix
   (its site-packages and dist-packages covered by empty read-only tmpfs, so only the stdlib imports), a few
   /dev nodes, a /proc of the new pid namespace (it shows only the run's own processes), and a writable /tmp (also
   /var/tmp, /dev/shm), a tmpfs of `disk_mb`. The host's /tmp, /run, /home, /work... are not there at all,
   so no host socket or host directory can be reached, and /tmp's size is the total disk quota of the run.
4. rlimits, then (root) a fresh unprivileged uid, or (user namespace) all capabilities dropped; then
   PR_SET_PDEATHSIG (after the uid change, which clears it) and the report of what was enforced.

The program text is read from `main.py` and the file unlinked before the jail, so the code cannot read it
back (and, under the jail, the host directory it came from is not visible). When a namespace is refused
the run still goes on, with the older, weaker fallbacks (see `rlr.sandbox.runner`).
"""

from __future__ import annotations

LAUNCHER_SOURCE = r"""
import sys


def _libc():
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _check(rc, what):
    import ctypes, os

    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))


def _bind_ro(libc, src, dst):
    import ctypes, struct

    _check(libc.mount(src, dst, None, 0x1000 | 0x4000, None), "bind " + src.decode())  # MS_BIND | MS_REC
    attr = ctypes.create_string_buffer(struct.pack("QQQQ", 0x1 | 0x2 | 0x4, 0, 0, 0))  # RDONLY|NOSUID|NODEV
    # mount_setattr(AT_FDCWD, dst, AT_RECURSIVE, ...): read-only for every mount under dst, not only the top one
    if libc.syscall(ctypes.c_long(442), ctypes.c_int(-100), ctypes.c_char_p(dst), ctypes.c_uint(0x8000),
                    attr, ctypes.c_size_t(32)) != 0:
        _check(libc.mount(None, dst, None, 0x1000 | 0x20 | 0x1 | 0x2 | 0x4, None), "read-only " + dst.decode())


def _jail(libc, cfg):
    import os

    new_root = os.getcwd().encode()
    nosuid_nodev = 0x2 | 0x4
    _check(libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None), "private /")  # MS_REC | MS_PRIVATE
    # The root is a small tmpfs made read-only once built; /tmp is a tmpfs of its own, the run's whole quota.
    _check(libc.mount(b"tmpfs", new_root, b"tmpfs", nosuid_nodev, b"size=1m,nr_inodes=4096,mode=0755"), "tmpfs root")
    root = new_root.decode()
    for path in cfg["ro_paths"]:
        inside = root + path
        if os.path.islink(path):
            os.makedirs(os.path.dirname(inside), exist_ok=True)
            if not os.path.lexists(inside):
                os.symlink(os.readlink(path), inside)
        elif os.path.isdir(path):
            os.makedirs(inside, exist_ok=True)
            _bind_ro(libc, path.encode(), inside.encode())
    for path in cfg["hidden_paths"]:  # site-packages under a bound prefix: an empty read-only tmpfs over it
        if os.path.isdir(root + path):
            _check(libc.mount(b"tmpfs", (root + path).encode(), b"tmpfs", 0x1 | nosuid_nodev, b"size=4k"),
                   "hide " + path)
    os.makedirs(root + "/dev", exist_ok=True)
    for node in ("null", "zero", "full", "random", "urandom"):
        open(root + "/dev/" + node, "w").close()
        _check(libc.mount(("/dev/" + node).encode(), (root + "/dev/" + node).encode(), None, 0x1000, None),
               "bind /dev/" + node)
    os.mkdir(root + "/tmp")
    options = b"size=%dm,nr_inodes=%d,mode=1777" % (cfg["disk_mb"], cfg["max_inodes"])
    _check(libc.mount(b"tmpfs", (root + "/tmp").encode(), b"tmpfs", nosuid_nodev, options), "tmpfs /tmp")
    os.makedirs(root + "/var", exist_ok=True)
    os.symlink("../tmp", root + "/var/tmp")
    os.symlink("../tmp", root + "/dev/shm")
    os.mkdir(root + "/proc")
    _check(libc.mount(b"proc", (root + "/proc").encode(), b"proc", nosuid_nodev | 0x8, None), "proc")
    machine = os.uname().machine  # not `platform`: importing it costs more than the whole jail
    number = {"x86_64": 155, "aarch64": 41}.get(machine)
    if number is None:
        raise OSError("pivot_root: unknown syscall number on " + machine)
    os.chdir(root)
    _check(libc.syscall(number, b".", b"."), "pivot_root")  # the old root now sits under the new one...
    _check(libc.umount2(b".", 0x2), "detach old root")  # ...and is detached (MNT_DETACH): gone for good
    # Read-only skeleton: in a user namespace the code owns these directories, so permissions alone would not do.
    _check(libc.mount(None, b"/", None, 0x20 | 0x1000 | 0x1 | nosuid_nodev, None), "read-only root")
    os.chdir("/tmp")
    os.environ.update(HOME="/tmp", TMPDIR="/tmp")


def _drop_capabilities(libc):
    import ctypes

    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable: all empty
    for cap in range(64):
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP
    _check(libc.capset(header, data), "capset")
    _check(libc.prctl(38, 1, 0, 0, 0), "no_new_privs")  # PR_SET_NO_NEW_PRIVS


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _relay(pid):
    import os, resource, signal

    os.closerange(3, 65536)  # hold no pipe end the code's peers wait on
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def _setup(cfg):
    import json, os, resource

    enforced = []
    libc = None
    as_root = os.getuid() == 0
    namespaces = False
    try:
        libc = _libc()
        libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL: the relay dies with the trainer
        uid, gid = os.getuid(), os.getgid()
        flags = 0x20000 | 0x20000000 | 0x40000000  # CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET
        if not as_root:
            flags |= 0x10000000  # CLONE_NEWUSER: lets an unprivileged user create the others
        _check(libc.unshare(flags), "unshare")
        if not as_root:
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", "0 %d 1" % uid)
            _write("/proc/self/gid_map", "0 %d 1" % gid)
        namespaces = True
        enforced += ["network", "pid_namespace"]
    except Exception as exc:
        sys.stderr.write("rlr sandbox: no namespaces (%s); weaker fallbacks apply\n" % exc)
        try:  # at least the network, the cheapest namespace
            if libc is not None and libc.unshare(0x40000000 | (0 if as_root else 0x10000000)) == 0:
                enforced.append("network")
        except Exception:
            pass
    if namespaces:
        pid = os.fork()
        if pid:
            _relay(pid)
        try:
            _jail(libc, cfg)
            enforced.append("jail")
        except Exception as exc:
            sys.stderr.write("rlr sandbox: no jail (%s)\n" % exc)
            sys.stderr.flush()
            os._exit(125)  # a half-built jail is not a safe place to run the code in
    for name, value in cfg["rlimits"].items():
        try:
            resource.setrlimit(getattr(resource, name), (value, value))
            enforced.append(name)
        except (ValueError, OSError):
            pass
    uid = cfg["uid"]
    if uid is not None and "jail" not in enforced:
        _open_stdlib_as_descriptors()  # fallback: the stdlib may sit under a directory the uid cannot enter
    if uid is not None:
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
    elif namespaces:
        try:
            _drop_capabilities(libc)
            enforced.append("no_capabilities")
        except Exception as exc:
            sys.stderr.write("rlr sandbox: could not drop capabilities (%s); refusing to run the code\n" % exc)
            os._exit(125)
    try:  # die with the relay (set after the uid change, which clears it)
        if libc is not None and libc.prctl(1, 9, 0, 0, 0) == 0:  # PR_SET_PDEATHSIG, SIGKILL
            enforced.append("parent_death")
    except Exception:
        pass
    os.write(cfg["report_fd"], json.dumps(enforced).encode())
    os.close(cfg["report_fd"])


def _open_stdlib_as_descriptors():
    # Only without the jail: the descriptors stay open (and reachable) while the code runs.
    import os

    moved = {}
    for p in sys.path:
        if os.path.isdir(p):
            moved[p] = "/proc/self/fd/%d" % os.open(p, os.O_RDONLY | os.O_DIRECTORY)
    sys.path[:] = list(moved.values())
    sys.path_importer_cache.clear()
    for module in list(sys.modules.values()):
        search = getattr(module, "__path__", None)
        if isinstance(search, list):
            for i, entry in enumerate(search):
                for old, new in moved.items():
                    if entry.startswith(old + "/"):
                        search[i] = new + entry[len(old):]


import json as _json
import os as _os

with open("main.py", encoding="utf-8") as _f:
    _code = compile(_f.read(), "main.py", "exec")
_os.unlink("main.py")  # the program text is not left for the code to read
_setup(_json.loads(sys.argv[1]))
sys.argv[:] = ["main.py"]
del _setup, _json, _f, _os
exec(_code, {"__name__": "__main__", "__file__": "main.py", "__builtins__": __builtins__})
"""
