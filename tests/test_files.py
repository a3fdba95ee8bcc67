"""rlr/files.py: several files written together, and a directory swapped in, leave no half of either."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rlr.files import atomic_write_files, replace_dir, restore_replaced_dir


def test_a_failing_file_leaves_every_file_as_it_was(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text("old\n")

    def broken():
        yield "half"
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write_files(tmp_path, {"train.jsonl": ["new\n"], "eval.jsonl": broken()})
    assert (tmp_path / "train.jsonl").read_text() == "old\n"  # not renamed: its sibling failed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.jsonl"]  # no temp files left


def test_replace_dir_swaps_in_the_new_directory(tmp_path: Path) -> None:
    target, new = tmp_path / "export", tmp_path / ".export.tmp"
    target.mkdir()
    (target / "old.txt").write_text("old")
    new.mkdir()
    (new / "model.safetensors").write_text("new")
    replace_dir(new, target)
    assert [p.name for p in target.iterdir()] == ["model.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # the old one is gone, nothing set aside


def test_a_swap_killed_between_its_renames_is_undone(tmp_path: Path) -> None:
    target = tmp_path / "export"
    aside = tmp_path / f".export.old-{os.getpid()}"  # what a kill after the first rename leaves
    aside.mkdir()
    (aside / "old.txt").write_text("old")
    restore_replaced_dir(target)
    assert (target / "old.txt").read_text() == "old" and not aside.exists()
