"""Disk faults (issue 20): a read-only or full output directory gives one clear line and leaves the previous state
intact; a SIGKILL mid-export or mid-checkpoint loses nothing that was complete.

The read-only and full disks are real: a size-limited tmpfs mounted for the test (root ignores permission bits,
so chmod would prove nothing). Where mounting is not allowed (no CAP_SYS_ADMIN) those tests skip.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from rl_helpers import PARITY_REWARD

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def rlr(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rlr", *args], env=ENV, capture_output=True, text=True, timeout=600)


def preset(tmp_path: Path, model: Path, output_dir: Path, name: str = "d") -> Path:
    (tmp_path / "parity_reward.py").write_text(PARITY_REWARD)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "run": {"name": name, "output_dir": str(output_dir), "seed": 0},
        "model": {"name_or_path": str(model)},
        "template": {"system": "none", "answer_format": "none"},
        "lora": {"r": 4, "alpha": 8},
        "data": {"train": {"source": "task:arithmetic", "rows": 64, "args": {"digits": 1}},
                 "eval": {"source": "task:arithmetic", "rows": 16, "args": {"digits": 1}}},
        "rewards": [{"name": "accuracy"}, {"name": "parity_reward.py:parity"}],
        "sft": {"use_lora": True, "trainer": {"max_steps": 12, "save_steps": 4, "per_device_train_batch_size": 8,
                                               "max_length": 48}},
        "rl": {"init_from": "sft", "trainer": {"max_steps": 4, "save_steps": 2, "per_device_train_batch_size": 8,
                                               "num_generations": 4, "max_completion_length": 8}},
        "eval": {"benchmarks": ["eval"], "samples": 1, "max_new_tokens": 8, "batch_size": 16},
        "export": {"merge_lora": True, "dtype": "float32"},
    }))
    return path


def tree_hashes(root: Path) -> dict[str, str]:
    import hashlib

    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    return lines[0]


@pytest.fixture
def tmpfs(tmp_path):
    """mount(size) -> a fresh tmpfs of that size; remount(path, options) changes it (ro, size=...)."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        where = tmp_path / f"mnt-{uuid.uuid4().hex[:6]}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'not root'})")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def remount(where: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(where)], check=True, capture_output=True)


def test_a_read_only_output_dir_is_refused_naming_it_and_the_finished_stages_stay(tmp_path, micro_model, tmpfs):
    disk = tmpfs("64m")
    p = preset(tmp_path, micro_model, disk)
    assert rlr("prepare-data", str(p)).returncode == 0
    done = rlr("sft", str(p))
    assert done.returncode == 0, done.stderr[-2000:]
    before = tree_hashes(disk)
    remount(disk, "ro")
    for args in (["prepare-data", "--overwrite"], ["sft", "--overwrite"], ["train-rl"], ["evaluate"], ["export"]):
        result = rlr(args[0], str(p), *args[1:])
        line = one_line(result)
        assert result.returncode == 2, (args, result.stderr[-2000:])
        assert "Read-only file system" in line and "run.output_dir" in line, line
    remount(disk, "rw")
    assert tree_hashes(disk) == before  # --overwrite deleted nothing: the probe refused before it could


def test_a_full_disk_gives_one_line_keeps_what_was_finished_and_resumes_once_freed(tmp_path, micro_model, tmpfs):
    disk = tmpfs("64m")
    p = preset(tmp_path, micro_model, disk)
    assert rlr("prepare-data", str(p)).returncode == 0
    assert rlr("sft", str(p)).returncode == 0
    sft_before = tree_hashes(disk / "d" / "sft")
    used = shutil.disk_usage(disk).used
    remount(disk, f"size={used + 64 * 1024}")  # room for the config and manifest, not for a checkpoint

    for command in ("train-rl", "export"):
        result = rlr(command, str(p))
        line = one_line(result)
        assert result.returncode == 1, result.stderr[-2000:]
        assert "no space left" in line and "run.output_dir" in line and "--resume" in line, line
    assert tree_hashes(disk / "d" / "sft") == sft_before
    assert not (disk / "d" / "export").exists()  # nothing half-written at the export target ...
    assert not list((disk / "d").glob(".export.tmp-*"))  # ... nor left beside it

    remount(disk, "size=64m")
    again = rlr("train-rl", str(p))
    assert again.returncode == 2 and "--resume" in again.stderr  # the failed stage is not silently replaced
    redo = rlr("train-rl", str(p), "--overwrite", "--json")
    assert redo.returncode == 0, redo.stderr[-2000:]
    assert json.loads(redo.stdout)["steps"] == 4
    assert rlr("export", str(p)).returncode == 0
    assert json.loads((disk / "d" / "export" / "manifest.json").read_text())["status"] == "complete"


def test_sigkill_mid_export_keeps_the_previous_export_and_a_rerun_writes_the_same_weights(tmp_path, micro_model):
    p = preset(tmp_path, micro_model, tmp_path / "runs")
    assert rlr("prepare-data", str(p)).returncode == 0
    assert rlr("sft", str(p)).returncode == 0
    first = rlr("export", str(p))
    assert first.returncode == 0, first.stderr[-2000:]
    target = tmp_path / "runs" / "d" / "export"
    weights = {k: v for k, v in tree_hashes(target).items() if k.endswith(".safetensors")}
    assert weights
    exported = tree_hashes(target)

    proc = subprocess.Popen([sys.executable, "-m", "rlr", "export", str(p), "--overwrite"], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        tmp = list(target.parent.glob(".export.tmp-*"))
        if tmp and any(tmp[0].glob("*.safetensors")):  # mid-write: the new weights are on their way
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the export finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert tree_hashes(target) == exported  # the previous export is whole, not half replaced

    rerun = rlr("export", str(p), "--overwrite")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert {k: v for k, v in tree_hashes(target).items() if k.endswith(".safetensors")} == weights
    assert not list(target.parent.glob(".export.tmp-*"))  # the killed attempt's leftovers are gone


def test_a_checkpoint_cut_off_mid_save_is_passed_over_by_resume(tmp_path, micro_model):
    straight = preset(tmp_path, micro_model, tmp_path / "runs", "straight")
    killed = preset(tmp_path, micro_model, tmp_path / "runs", "killed")
    for p in (straight, killed):
        assert rlr("prepare-data", str(p)).returncode == 0
    expected = json.loads(rlr("sft", str(straight), "--json").stdout)

    root = tmp_path / "runs" / "killed" / "sft"
    proc = subprocess.Popen([sys.executable, "-m", "rlr", "sft", str(killed)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    saved = root / "checkpoint-8" / "trainer_state.json"
    while time.time() < deadline and proc.poll() is None and not saved.is_file():
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert (root / "checkpoint-8").is_dir(), "the run ended before checkpoint-8"
    # What a kill in the middle of saving checkpoint-8 leaves (trainer_state.json is written last, and the weights
    # may be cut short): saves take milliseconds here, too short to hit reliably with a real signal.
    (root / "checkpoint-8" / "trainer_state.json").unlink()
    for weights in (root / "checkpoint-8").glob("*.safetensors"):
        weights.write_bytes(weights.read_bytes()[:100])

    resumed = rlr("sft", str(killed), "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "checkpoint-8 was cut off while saving" in resumed.stderr and "resuming from checkpoint-4" in resumed.stderr
    got = json.loads(resumed.stdout)
    assert got["steps"] == expected["steps"] == 12
    assert got["final_loss"] == pytest.approx(expected["final_loss"], rel=1e-5, abs=1e-6)


def test_tiny_model_report_and_export_out_on_a_read_only_dir_exit_2_naming_their_own_argument(tmp_path, tmpfs,
                                                                                            micro_model):
    """They write outside the run directory, so the message named run.output_dir (tiny-model and report: exit 1)."""
    disk = tmpfs("1m")
    remount(disk, "ro")
    r = rlr("tiny-model", str(disk / "tiny"))
    assert r.returncode == 2 and "tiny-model DIR: cannot write to" in one_line(r) and "run.output_dir" not in r.stderr
    run = tmp_path / "runs/x"
    (run / "rl").mkdir(parents=True)
    r = rlr("report", str(run), "--out", str(disk / "report"))
    assert r.returncode == 2 and "--out: cannot write to" in one_line(r) and "run.output_dir" not in r.stderr
    r = rlr("export", str(preset(tmp_path, micro_model, tmp_path / "runs")), "--from", str(micro_model),
            "--out", str(disk / "export"))
    assert r.returncode == 2 and "--out: cannot write to" in one_line(r) and "run.output_dir" not in r.stderr


def test_an_unrelated_error_on_a_nearly_full_disk_keeps_its_own_words(tmp_path, monkeypatch):
    from rlr import disk

    class Usage:
        free, total = 1000, 10_000_000

    monkeypatch.setattr(disk.shutil, "disk_usage", lambda path: Usage)
    disk.writing(tmp_path)
    try:
        assert disk.write_failure(ValueError("learning_rate must be positive")) is None
        assert "no space left" in disk.write_failure(RuntimeError("PytorchStreamWriter failed writing file data/0"))
        assert "no space left" in disk.write_failure(OSError(28, "No space left on device"))
    finally:
        disk.writing(None)
