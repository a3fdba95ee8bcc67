"""Run directories: `runs/<name>/<stage>/` with config.yaml, manifest.json and metrics.jsonl.

Every stage goes through `StageRun`, which is what makes a result trustworthy and repeatable: the resolved
config is saved beside the outputs, the manifest records versions, device, timings and input hashes, and a
completed stage is never overwritten without `--overwrite`. Writes are atomic (temp file + rename), so a killed
process leaves either the old file or the new one. Only the main process (rank 0) writes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from rlr import paths
from rlr.disk import check_writable, writing
from rlr.errors import UserError
from rlr.files import atomic_write_json, atomic_write_text, read_json

STAGES = ("data", "sft", "rl", "eval", "export")
LOCK_FILE = ".rlr.lock"  # "<pid> <host>" of the process writing a stage; removed when it finishes
LIBRARIES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "math-verify", "vllm")


def invoked_command() -> str:
    """The command line as the user would retype it: `python -m rlr` (what accelerate launches) reads as `rlr`."""
    program = Path(sys.argv[0]).name
    return " ".join(["rlr" if program == "__main__.py" else program, *sys.argv[1:]])


def process_alive(pid: int) -> bool:
    """Whether another process with this pid runs on this machine (our own pid: a leftover of an earlier one)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def library_versions() -> dict[str, str]:
    from rlr import __version__

    versions = {"rlr": __version__, "python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class StageRun:
    """One stage of one run: `<output_dir>/<name>/<stage>/`."""

    def __init__(self, run_root: Path, stage: str):
        self.run_root = Path(run_root)
        self.stage = stage
        self.path = paths.stage_path(self.run_root, stage)
        self.manifest_path = paths.manifest_path(self.path)
        self.metrics_path = self.path / paths.METRICS_FILE
        self.config_path = paths.config_path(self.path)
        self._manifest: dict[str, Any] = {}
        self._t0 = 0.0

    @classmethod
    def of(cls, cfg: Any, stage: str) -> StageRun:
        return cls(paths.run_root(cfg), stage)

    # --- state -------------------------------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        if self.manifest_path.is_file():
            try:
                return read_json(self.manifest_path)
            except (OSError, json.JSONDecodeError):
                return {}
        return {}

    @property
    def status(self) -> str | None:
        return self.manifest().get("status")

    def is_complete(self) -> bool:
        return self.status == "complete"

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK_FILE

    def holder(self) -> str | None:
        """'pid N on HOST' of a live process writing this stage, else None (no lock, or its process is gone)."""
        try:
            pid_text, _, host = self.lock_path.read_text().partition(" ")
            pid = int(pid_text)
        except (OSError, ValueError):
            return None
        if host.strip() != socket.gethostname():
            return f"pid {pid} on {host.strip()}"  # another machine's process: cannot tell, assume it lives
        return f"pid {pid}" if process_alive(pid) else None

    def check_can_start(self, *, overwrite: bool, resume: bool) -> None:
        """Refuse to touch an existing stage unless told how; raises before anything is written."""
        if not is_main_process():
            return  # rank 0 decides: another rank could see rank 0's own fresh lock and "running" manifest
        if not self.path.exists() or not any(self.path.iterdir()):
            return
        if holder := self.holder():  # --overwrite must not delete, nor --resume interleave with, a live run
            raise UserError(f"{self.path} is being written by another rlr process ({holder}); wait for it or stop it "
                            f"(a stale lock from a crashed machine: delete {self.lock_path})")
        status = self.status or "unknown"
        if overwrite:
            return
        if status == "complete":
            raise UserError(f"{self.path} is already complete; pass --overwrite to replace it")
        if not resume:
            gone = " (its process is gone: killed or crashed)" if status == "running" else ""
            raise UserError(f"{self.path} exists with status '{status}'{gone}; pass --resume to continue it or "
                            "--overwrite to start over")

    # --- lifecycle ---------------------------------------------------------------------------------------
    def start(self, *, config: dict[str, Any], overwrite: bool, resume: bool, device: dict | None = None,
              inputs: dict[str, Any] | None = None) -> StageRun:
        if not is_main_process():
            # Rank 0 decides and writes; other ranks would see rank 0's fresh "running" manifest and refuse.
            return self
        self.check_can_start(overwrite=overwrite, resume=resume)
        check_writable(self.path)  # a read-only mount: exit 2 before --overwrite deletes anything
        writing(self.path)
        if overwrite and self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.lock_path, f"{os.getpid()} {socket.gethostname()}")
        previous = self.manifest() if resume else {}
        atomic_write_text(self.config_path, yaml.safe_dump(config, sort_keys=False))
        self._t0 = time.time()
        self._manifest = {
            "stage": self.stage,
            "run": self.run_root.name,
            "status": "running",
            "started_at": now_iso(),
            "finished_at": None,
            "duration_s": None,
            "resumed": bool(previous),
            "attempts": previous.get("attempts", 0) + 1,
            "command": invoked_command(),
            "versions": library_versions(),
            "git_sha": git_sha(),
            "device": device,
            "inputs": inputs or {},
            "outputs": {},
        }
        atomic_write_json(self.manifest_path, self._manifest)
        if not resume:
            self.metrics_path.unlink(missing_ok=True)
        return self

    def update(self, **fields: Any) -> None:
        if not is_main_process():
            return
        self._manifest.update(fields)
        atomic_write_json(self.manifest_path, self._manifest)

    def finish(self, status: str = "complete", **fields: Any) -> None:
        self.update(status=status, finished_at=now_iso(), duration_s=round(time.time() - self._t0, 2), **fields)
        if is_main_process():
            self.lock_path.unlink(missing_ok=True)

    def log_metrics(self, record: dict[str, Any]) -> None:
        """Append one JSON object per logged step (a line is the unit of atomicity here)."""
        if not is_main_process():
            return
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_path, "a+b") as f:
            torn = f.tell() > 0 and (f.seek(-1, os.SEEK_END), f.read(1))[1] != b"\n"  # a kill mid-append
            f.write((b"\n" if torn else b"") + (json.dumps(record, default=float) + "\n").encode())

    def drop_metrics_after(self, step: int) -> int:
        """On --resume from checkpoint-N: the steps after N are trained again, so their records from the killed
        attempt go (else metrics.jsonl held them twice: 23 and 26 lines for 21 steps). Returns how many went."""
        if not is_main_process() or not self.metrics_path.is_file():
            return 0
        from rlr.files import atomic_write_text

        lines = self.metrics_path.read_text(errors="replace").splitlines()
        kept = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a torn line from the kill
            if not isinstance(record, dict) or not isinstance(record.get("step"), int) or record["step"] <= step:
                kept.append(line)
        if len(kept) != len(lines):
            atomic_write_text(self.metrics_path, "".join(line + "\n" for line in kept))
        return len(lines) - len(kept)

    def read_metrics(self) -> list[dict[str, Any]]:
        """The logged records; a torn line (a kill mid-append) is skipped, not fatal to the run that reads it."""
        if not self.metrics_path.is_file():
            return []
        records = []
        for line in self.metrics_path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def __enter__(self) -> StageRun:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            if self._manifest.get("status") == "running":
                self.finish("complete")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.finish("interrupted")
        else:
            self.finish("failed", error=f"{exc_type.__name__}: {exc}")
