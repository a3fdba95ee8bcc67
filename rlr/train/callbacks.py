"""Trainer callbacks every training stage uses: metrics into the run dir, a rich progress view, a NaN guard,
and a Ctrl-C that saves a checkpoint before stopping.

They hook TRL's trainers only through the public `TrainerCallback` API, so they survive TRL upgrades.
"""

from __future__ import annotations

import math
import signal
import time
from typing import Any

from transformers import TrainerCallback

from rlr.runs import StageRun, is_main_process
from rlr.trl_internals import (
    LOG_ENTROPY,
    LOG_FRAC_REWARD_ZERO_STD,
    LOG_GRAD_NORM,
    LOG_KL,
    LOG_LEARNING_RATE,
    LOG_LOSS,
    LOG_MEAN_LENGTH,
    LOG_REWARD,
    LOG_SFT_TOKEN_ACCURACY,
    LOG_SFT_TOKENS,
)

# Metric keys shown in the progress line, in order, when the trainer logs them (TRL's names: rlr/trl_internals.py;
# `accuracy` is added by rlr.train.rl_logging.AccuracyLog from whichever correctness reward the preset uses).
PROGRESS_KEYS = (
    (LOG_LOSS, "loss"), (LOG_REWARD, "reward"), ("accuracy", "acc"), (LOG_SFT_TOKEN_ACCURACY, "tok_acc"),
    (LOG_MEAN_LENGTH, "len"), (LOG_KL, "kl"), (LOG_ENTROPY, "ent"), (LOG_FRAC_REWARD_ZERO_STD, "zero_std"),
    (LOG_LEARNING_RATE, "lr"),
)


class RunDirMetrics(TrainerCallback):
    """Appends one JSON object per logging step to `<stage>/metrics.jsonl`, with step time and throughput."""

    def __init__(self, run: StageRun):
        self.run = run
        self._last_time = time.time()
        self._last_step = 0
        self._last_tokens = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        # On --resume the state comes from the checkpoint: measure the first interval from there, not from step 0
        # (which made the first step_time_s / tokens_per_s after a resume meaningless). Token counters differ:
        # GRPO's lives in the state and resumes, SFT's restarts at 0 (see on_log's guard).
        if state.global_step > 0:  # resumed from checkpoint-<global_step>: the later records are replayed
            self.run.drop_metrics_after(state.global_step)
        self._last_time, self._last_step = time.time(), state.global_step
        self._last_tokens = float(getattr(state, "num_input_tokens_seen", 0) or 0)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or not state.is_world_process_zero:
            return
        now = time.time()
        steps = max(state.global_step - self._last_step, 1)
        record: dict[str, Any] = {"step": state.global_step, "epoch": state.epoch, "time": round(now, 3)}
        record.update({k: v for k, v in logs.items() if isinstance(v, (int, float, str)) or v is None})
        record["step_time_s"] = round((now - self._last_time) / steps, 4)
        tokens = float(getattr(state, "num_input_tokens_seen", 0) or logs.get(LOG_SFT_TOKENS, 0) or 0)
        if tokens < self._last_tokens:  # a counter that restarted with this train() call
            self._last_tokens = 0.0
        if tokens > self._last_tokens and now > self._last_time:
            record["tokens_per_s"] = round((tokens - self._last_tokens) / (now - self._last_time), 1)
        self._last_time, self._last_step, self._last_tokens = now, state.global_step, tokens
        self.run.log_metrics(record)


class RichProgress(TrainerCallback):
    """One live progress bar on stderr with the metrics that tell whether RL is working."""

    def __init__(self, description: str):
        self.description = description
        self.progress = None
        self.task = None

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from rlr.console import stderr

        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"), console=stderr, transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task(self.description, total=state.max_steps, completed=state.global_step,
                                           metrics="")

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.progress is None or not logs:
            return
        shown = [f"{label} {logs[key]:.3g}" for key, label in PROGRESS_KEYS if isinstance(logs.get(key), (int, float))]
        if shown:  # the end-of-training log (train_runtime, ...) has none: keep the last step's on the final line
            self.progress.update(self.task, metrics="  ".join(shown))

    def on_train_end(self, args, state, control, **kwargs):
        self.close()

    def close(self) -> None:
        """Stop the live display; also needed when train() raises (on a terminal rich redirects stderr while live,
        so the error message printed after a crash would otherwise vanish)."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


class NanGuard(TrainerCallback):
    """Stops training at the first NaN/inf loss; the last checkpoint on disk is the last good state."""

    def __init__(self):
        self.bad_step: int | None = None
        self.bad_key = ""

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in (LOG_LOSS, LOG_GRAD_NORM):
            value = (logs or {}).get(key)
            if isinstance(value, float) and not math.isfinite(value):
                self.bad_step, self.bad_key = state.global_step, key
                control.should_training_stop = True
                control.should_save = False  # never checkpoint a poisoned model


class GracefulInterrupt(TrainerCallback):
    """First Ctrl-C: finish the current step, save a checkpoint, stop (the stage then exits 130).
    A second Ctrl-C interrupts at once."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def install(self) -> GracefulInterrupt:
        if is_main_process():
            try:
                self._previous = signal.signal(signal.SIGINT, self._handle)
            except ValueError:  # not the main thread (e.g. inside a test runner thread): keep the default
                self._previous = None
        return self

    def uninstall(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested:
            control.should_save = True
            control.should_training_stop = True


def remove_default_printers(trainer: Any) -> None:
    """Our progress view replaces transformers' tqdm bar and its dict printer."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
