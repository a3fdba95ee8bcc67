"""Running a TRL trainer inside a stage: resume, Ctrl-C, NaN guard, metrics; the same for SFT and RL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from rlr.errors import UserError
from rlr.runs import StageRun
from rlr.train.callbacks import GracefulInterrupt, NanGuard, RichProgress, RunDirMetrics, remove_default_printers


class TrainingDiverged(RuntimeError):
    """NaN/inf loss: the run stops and keeps its last good checkpoint."""


def _is_complete_checkpoint(path: Path) -> bool:
    # transformers writes trainer_state.json last (after weights, optimizer, scheduler and RNG state), so a parsable
    # one means the rest is there; a run killed mid-save leaves the directory without it, or with half of it.
    try:
        json.loads((path / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return True


def checkpoints(output_dir: Path) -> list[Path]:
    """checkpoint-N directories, newest (highest N) first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and re.fullmatch(r"checkpoint-\d+", p.name)]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]), reverse=True)


def last_checkpoint(output_dir: Path) -> str | None:
    """The newest complete checkpoint; one a kill interrupted mid-save is passed over."""
    return next((str(p) for p in checkpoints(output_dir) if _is_complete_checkpoint(p)), None)


def resume_checkpoint(run: StageRun, resume: bool) -> str | None:
    if not resume:
        return None
    checkpoint = last_checkpoint(run.path)
    if checkpoint is None:
        raise UserError(f"--resume: no complete checkpoint-* directory in {run.path}; rerun with --overwrite to start "
                        "over")
    skipped = [p.name for p in checkpoints(run.path) if str(p) != checkpoint and int(p.name.split("-")[1])
               > int(Path(checkpoint).name.split("-")[1])]
    if skipped:
        from rlr.console import stderr

        stderr.print(f"[yellow]--resume: {', '.join(skipped)} was cut off while saving (no trainer_state.json); "
                     f"resuming from {Path(checkpoint).name}[/yellow]")
    return checkpoint


def train_with_hygiene(trainer: Any, run: StageRun, *, resume: bool, description: str) -> Any:
    """trainer.train() with our callbacks; raises KeyboardInterrupt after saving on Ctrl-C (exit 130)."""
    checkpoint = resume_checkpoint(run, resume)  # before the SIGINT handler: a raise here must not leave it installed
    interrupt = GracefulInterrupt().install()
    guard = NanGuard()
    remove_default_printers(trainer)
    progress = RichProgress(description)
    for cb in (RunDirMetrics(run), progress, guard, interrupt):
        trainer.add_callback(cb)
    try:
        result = trainer.train(resume_from_checkpoint=checkpoint)
    finally:
        interrupt.uninstall()
        progress.close()
    if guard.bad_step is not None:
        kept = last_checkpoint(run.path)
        raise TrainingDiverged(f"{guard.bad_key} became NaN/inf at step {guard.bad_step}; the last good checkpoint is "
                               f"{kept or 'none (no checkpoint was saved yet)'}; lower the learning rate and --resume")
    if interrupt.requested:
        step = trainer.state.global_step
        message = (f"interrupted at step {step}; checkpoint saved in {run.path} (rerun with --resume to continue; "
                   "`rlr pipeline` resumes when rerun as is)")
        # Said here as well: Typer turns the KeyboardInterrupt into a bare Exit(130), so the CLI never prints it.
        from rlr.console import stderr

        stderr.print(message, markup=False, highlight=False)
        raise KeyboardInterrupt(message)
    return result
