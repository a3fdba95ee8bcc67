"""Atomic writes and hashing: a killed process leaves either the old file (or directory) or the new one, never half
of one. Every stage writes through here, so a file mode or fsync fix lands once."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


def default_file_mode() -> int:
    """The mode open() would give a new file (0666 less the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_via(path: Path, write: Callable[[str], None]) -> None:
    """`write(tmp)` writes the whole file at the temporary path it is given (for writers that want a file name, such
    as matplotlib's savefig), which then replaces `path` in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        # mkstemp creates 0600: manifests, configs, results and plots would be unreadable to the rest of a team
        os.chmod(tmp, default_file_mode())
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_files(directory: Path, contents: dict[str, Iterable[str]]) -> None:
    """Write several files of one directory, each from its pieces of text: all are written to temp names first and
    renamed only once every one is on disk, so a failure (a full disk) leaves no file half-written and none of them
    replaced; only the renames themselves are not one step. Pieces are streamed, so a large split is never one
    string in memory."""
    directory.mkdir(parents=True, exist_ok=True)
    temps: dict[str, str] = {}
    try:
        for name, pieces in contents.items():
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
            temps[name] = tmp
            # mkstemp creates 0600: manifests, configs, data and results would be unreadable to the rest of a team
            os.chmod(tmp, default_file_mode())
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.writelines(pieces)
                f.flush()
                os.fsync(f.fileno())
        for name, tmp in temps.items():
            os.replace(tmp, directory / name)
    except BaseException:
        for tmp in temps.values():
            Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_files(path.parent, {path.name: [text]})


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _set_aside(target: Path) -> Path:
    return target.parent / f".{target.name}.old-{os.getpid()}"


def replace_dir(new: Path, target: Path) -> None:
    """Put the finished directory `new` at `target`, replacing what is there. os.replace cannot rename onto a
    non-empty directory, so an existing target is first renamed aside (`.<name>.old-<pid>`, beside it) and deleted
    only after `new` is in place; a failed rename puts it back. A process killed between the two renames leaves
    the old directory aside: `restore_replaced_dir` puts it back (or deletes it when a new one made it)."""
    old = None
    if target.exists():
        old = _set_aside(target)
        os.replace(target, old)
    try:
        os.replace(new, target)
    except OSError:
        if old is not None:
            os.replace(old, target)  # the previous directory rather than nothing
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def restore_replaced_dir(target: Path) -> None:
    """Undo what a killed `replace_dir` left: the old directory goes back when the target is missing, else goes."""
    for path in target.parent.glob(f".{target.name}.old-*"):
        if not target.exists():
            os.replace(path, target)
        else:
            shutil.rmtree(path, ignore_errors=True)
