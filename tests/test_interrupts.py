"""Ctrl-C in `rlr evaluate` and `rlr export`: exit 130 and a line saying what was kept and how to go on (issue 21)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


def test_ctrl_c_in_evaluate_exits_130_saying_what_was_kept(tmp_path, micro_model):
    preset = tmp_path / "ev.yaml"
    preset.write_text(yaml.safe_dump({
        "run": {"name": "ev", "output_dir": str(tmp_path / "runs")},
        "model": {"name_or_path": str(micro_model)},
        "template": {"system": "none", "answer_format": "none"},
        "data": {"train": {"source": "task:arithmetic", "rows": 16},
                 "eval": {"source": "task:arithmetic", "rows": 3000, "args": {"digits": 3}}},
        "eval": {"benchmarks": ["eval"], "max_new_tokens": 64, "batch_size": 4},
    }))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    rlr = [sys.executable, "-m", "rlr"]
    assert subprocess.run([*rlr, "prepare-data", str(preset)], env=env, capture_output=True).returncode == 0
    log = open(tmp_path / "stderr.txt", "w+")  # a file, not a pipe nobody reads while waiting (it could fill up)
    proc = subprocess.Popen([*rlr, "evaluate", str(preset)], env=env, stdout=subprocess.DEVNULL, stderr=log)
    manifest = tmp_path / "runs/ev/eval/base/manifest.json"
    deadline = time.time() + 120
    while time.time() < deadline and not (manifest.is_file() and json.loads(manifest.read_text())["status"]
                                          == "running"):
        time.sleep(0.2)
    time.sleep(2)  # inside generation
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    err = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == 130, err[-2000:]
    assert "evaluate interrupted during base: no model's evaluation had finished" in err
    assert "Rerun the same command to go on" in err and "Traceback" not in err
    assert json.loads(manifest.read_text())["status"] == "interrupted"
    assert not (manifest.parent / "results.json").exists()


def test_ctrl_c_in_export_leaves_the_previous_export_and_says_so(cli, tmp_path, micro_model, monkeypatch):
    """The signal is delivered while the model card is written (a real SIGINT to this process)."""
    from rlr.export import card as export_card

    preset = tmp_path / "ex.yaml"
    preset.write_text(yaml.safe_dump({
        "run": {"name": "ex", "output_dir": str(tmp_path / "runs")},
        "model": {"name_or_path": str(micro_model)},
        "template": {"system": "none", "answer_format": "none"},
        "data": {"train": {"source": "task:arithmetic", "rows": 64, "args": {"digits": 1}}},
        "sft": {"use_lora": True, "trainer": {"max_steps": 1, "per_device_train_batch_size": 8, "max_length": 64}},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
    }))
    for command in ("prepare-data", "sft", "export"):
        assert cli(command, preset).code == 0
    target = tmp_path / "runs/ex/export"
    before = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()}

    real = export_card.write_model_card

    def interrupted(*args, **kwargs):
        real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # Python raises KeyboardInterrupt right here, as on a Ctrl-C
        time.sleep(1)

    monkeypatch.setattr(export_card, "write_model_card", interrupted)
    r = cli("export", preset, "--overwrite")
    assert r.code == 130, r.stderr
    assert f"export interrupted: the partial copy was removed and the previous export in {target} is untouched" \
        in r.stderr
    assert {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()} == before
    assert not list(target.parent.glob(".export.tmp-*"))


def test_a_ctrl_c_swallowed_by_a_finalizer_still_stops_the_next_loop_step():
    """Python ignores a KeyboardInterrupt raised inside `__del__` (the regex module's, during generation, lost
    the interrupt and let a 3,000-problem evaluation run on): the recorded request raises at the next batch."""
    from rlr.interrupts import raise_if_interrupted, remembered_interrupts

    class SwallowsTheInterrupt:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)  # the handler's KeyboardInterrupt lands here and is ignored

    with remembered_interrupts():
        raise_if_interrupted()  # nothing pressed yet
        SwallowsTheInterrupt()
        with pytest.raises(KeyboardInterrupt):
            raise_if_interrupted()
    raise_if_interrupted()  # the request belongs to the command that saw it
