"""Running a TRL trainer inside a stage: resume, Ctrl-C, NaN guard, metrics; the same for SFT and RL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlr.errors import UserError
from rlr.runs import StageRun
from rlr.train.callbacks import GracefulInterrupt, NanGuard, RichProgress, RunDirMetrics, remove_default_printers


class TrainingDiverged(RuntimeError):
    """NaN/inf loss: the run stops and keeps its last good checkpoint."""


def last_checkpoint(output_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    if not Path(output_dir).is_dir():
        return None
    return get_last_checkpoint(str(output_dir))


def resume_checkpoint(run: StageRun, resume: bool) -> str | None:
    if not resume:
        return None
    checkpoint = last_checkpoint(run.path)
    if checkpoint is None:
        raise UserError(f"--resume: no checkpoint-* directory in {run.path}; rerun with --overwrite to start over")
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
