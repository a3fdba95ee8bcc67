"""Disk faults: a read-only or full output directory gets one line that names the place and the fix.

Libraries report the same fault in many shapes: an OSError with ENOSPC from Python's own writes, a
`SafetensorError: ... StorageFull` from the Rust writer, torch's `PytorchStreamWriter failed writing file`.
So the diagnosis does not trust the exception alone: it also asks the file system of the stage being written
how much room is left.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from rlr.errors import UserError

FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
DENIED_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}
FULL_TEXT = ("no space left on device", "storagefull", "os error 28", "disk quota exceeded")
LOW_FREE_BYTES = 1 << 20  # under 1 MiB free where a stage writes: any write failure there is the full disk

# The stage directory being written, set by StageRun.start: where a write failure is looked up.
_writing: Path | None = None


def writing(path: Path | None) -> None:
    global _writing
    _writing = Path(path) if path is not None else None


def existing_ancestor(path: Path) -> Path:
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(path: Path, key: str = "run.output_dir") -> None:
    """Refuse before anything is written: root ignores permission bits, so os.access() would say yes to a
    read-only mount; creating a file is the only honest probe."""
    where = existing_ancestor(path)
    example = f" (e.g. {key}=runs)" if "." in key and not key.startswith("-") else ""  # a config key takes one
    try:
        fd, probe = tempfile.mkstemp(dir=where, prefix=".rlr-write-probe-")
    except OSError as e:
        if e.errno in DENIED_ERRNOS:
            raise UserError(f"{key}: cannot write to {where} ({os.strerror(e.errno)}); choose a writable directory"
                            f"{example} or fix its permissions") from e
        if e.errno in FULL_ERRNOS:
            raise UserError(f"{key}: {where} has no space left ({free_text(where)}); free space or choose another "
                            f"disk{example}") from e
        raise
    os.close(fd)
    os.unlink(probe)


def free_text(path: Path) -> str:
    try:
        usage = shutil.disk_usage(existing_ancestor(path))
    except OSError:
        return "free space unknown"
    return f"{_size(usage.free)} free of {_size(usage.total)}"


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def write_failure(exc: BaseException) -> str | None:
    """The one-line message for an exception that is a disk fault, else None."""
    errnos = {e.errno for e in _chain(exc) if isinstance(e, OSError) and e.errno is not None}
    text = " ".join(str(e) for e in _chain(exc)).lower()
    where = _writing or next((Path(e.filename) for e in _chain(exc) if isinstance(e, OSError) and e.filename), None)
    low_space = False
    if where is not None:
        try:
            low_space = shutil.disk_usage(existing_ancestor(where)).free < LOW_FREE_BYTES
        except OSError:
            pass
    place = str(where) if where is not None else "the output directory"
    # Low space alone is not proof: an unrelated error (a bad value) raised on a nearly full disk keeps its words.
    writing_failed = bool(errnos) or any(t in text for t in ("write", "serializ", "save", "flush"))
    if errnos & FULL_ERRNOS or any(t in text for t in FULL_TEXT) or (low_space and writing_failed):
        return (f"no space left on the device while writing {place} ({free_text(where) if where else 'full'}); "
                "free space or move run.output_dir to another disk, then rerun with --resume (finished stages and "
                "complete checkpoints are kept; a checkpoint cut off mid-save is skipped; with no complete "
                "checkpoint, --overwrite starts the stage over)")
    if errnos & {errno.EROFS}:
        return f"{place} is on a read-only file system; choose a writable run.output_dir"
    return None
