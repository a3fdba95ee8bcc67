"""Run directories: refusal to overwrite, manifest content, atomic writes, metrics."""

from __future__ import annotations

import json

import pytest

from rlr.errors import UserError
from rlr.files import atomic_write_json
from rlr.runs import StageRun


def test_stage_lifecycle_and_manifest(tmp_path):
    run = StageRun(tmp_path / "r", "sft")
    with run.start(config={"a": 1}, overwrite=False, resume=False, device={"device": "cpu"}, inputs={"data": "abc"}):
        run.log_metrics({"step": 1, "loss": 2.0})
        assert run.status == "running"
    m = run.manifest()
    assert m["status"] == "complete" and m["stage"] == "sft" and m["run"] == "r"
    assert m["inputs"] == {"data": "abc"} and m["device"] == {"device": "cpu"}
    assert {"rlr", "torch", "transformers", "trl", "python"} <= set(m["versions"])
    assert m["duration_s"] >= 0 and m["finished_at"]
    assert (run.path / "config.yaml").read_text().strip() == "a: 1"
    assert run.read_metrics() == [{"step": 1, "loss": 2.0}]


def test_complete_stage_is_never_overwritten_without_flag(tmp_path):
    run = StageRun(tmp_path / "r", "rl")
    with run.start(config={}, overwrite=False, resume=False):
        (run.path / "weights.bin").write_text("x")
    with pytest.raises(UserError, match="already complete; pass --overwrite"):
        StageRun(tmp_path / "r", "rl").start(config={}, overwrite=False, resume=False)
    assert (run.path / "weights.bin").exists()
    StageRun(tmp_path / "r", "rl").start(config={}, overwrite=True, resume=False)
    assert not (run.path / "weights.bin").exists()


def test_failed_stage_needs_resume_or_overwrite(tmp_path):
    run = StageRun(tmp_path / "r", "sft")
    with pytest.raises(RuntimeError):
        with run.start(config={}, overwrite=False, resume=False):
            run.log_metrics({"step": 1})
            raise RuntimeError("boom")
    assert run.manifest()["status"] == "failed" and "boom" in run.manifest()["error"]
    with pytest.raises(UserError, match="status 'failed'; pass --resume"):
        StageRun(tmp_path / "r", "sft").start(config={}, overwrite=False, resume=False)
    resumed = StageRun(tmp_path / "r", "sft").start(config={}, overwrite=False, resume=True)
    assert resumed.manifest()["attempts"] == 2 and resumed.read_metrics() == [{"step": 1}]


def test_interrupted_status(tmp_path):
    run = StageRun(tmp_path / "r", "sft")
    with pytest.raises(KeyboardInterrupt):
        with run.start(config={}, overwrite=False, resume=False):
            raise KeyboardInterrupt
    assert run.status == "interrupted"


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "m.json"
    atomic_write_json(path, {"v": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"v": object()} if False else {1j: 2})  # keys must be str: dumps fails
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_a_live_writer_locks_the_stage_and_a_dead_one_does_not(tmp_path):
    """Two processes on one stage (both with --overwrite, or --resume) would interleave metrics or delete each
    other's files: a stage being written by a live process is refused; a lock left by a killed one is not."""
    import socket
    import subprocess
    import sys

    run = StageRun(tmp_path, "sft")
    run.start(config={}, overwrite=False, resume=False)
    assert run.lock_path.is_file() and run.holder() is None  # our own lock does not block us
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run.lock_path.write_text(f"{other.pid} {socket.gethostname()}")
        for flags in ({"overwrite": True, "resume": False}, {"overwrite": False, "resume": True}):
            with pytest.raises(UserError, match=f"being written by another rlr process \\(pid {other.pid}\\)"):
                StageRun(tmp_path, "sft").check_can_start(**flags)
    finally:
        other.kill()
        other.wait()
    StageRun(tmp_path, "sft").check_can_start(overwrite=True, resume=False)  # its process is gone: stale lock
    with pytest.raises(UserError, match="status 'running' \\(its process is gone"):
        StageRun(tmp_path, "sft").check_can_start(overwrite=False, resume=False)
    run.finish("complete")
    assert not run.lock_path.exists()


def test_a_torn_metrics_line_is_skipped(tmp_path):
    run = StageRun(tmp_path, "rl")
    run.start(config={}, overwrite=False, resume=False)
    run.log_metrics({"step": 1, "reward": 0.5})
    with open(run.metrics_path, "a") as f:
        f.write('{"step": 2, "rew')  # a kill mid-append
    assert run.read_metrics() == [{"step": 1, "reward": 0.5}]
    run.log_metrics({"step": 2, "reward": 0.75})  # the resumed run's next line starts on a line of its own
    assert run.read_metrics() == [{"step": 1, "reward": 0.5}, {"step": 2, "reward": 0.75}]


def test_atomic_writes_get_the_umask_mode_not_mkstemp_0600(tmp_path):
    """manifest.json, config.yaml, results.json, samples.jsonl: readable by a team like train.jsonl is (mkstemp
    creates 0600; on a shared cluster nobody else could read a run's results)."""
    import os

    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "results.json", {"a": 1})
        run = StageRun(tmp_path / "run", "sft")
        run.start(config={"x": 1}, overwrite=False, resume=False)
        run.finish("complete")
    finally:
        os.umask(old)
    for path in (tmp_path / "results.json", tmp_path / "run/sft/manifest.json", tmp_path / "run/sft/config.yaml"):
        assert path.stat().st_mode & 0o777 == 0o644, path
