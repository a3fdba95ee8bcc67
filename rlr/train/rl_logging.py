"""What an RL run writes beside TRL's own logs: sampled completions with their rewards, and an `accuracy` metric.

Completions are captured by wrapping each reward function (TRL's public contract: every scored completion passes
through them with its prompt), not by reading the trainer's private log buffers, so the capture survives TRL
upgrades. `rl/samples.jsonl` gets one row per completion of the latest scored batch every `sample_log_every` steps:
the place to look when the reward climbs and you want to know whether the model learned the task or the reward.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


class BatchRecorder:
    """The latest batch each reward function scored: prompts, completions and that function's scores."""

    def __init__(self) -> None:
        self.prompts: list[Any] = []
        self.completions: list[Any] = []
        self.scores: dict[str, list[float | None]] = {}

    def record(self, name: str, prompts: list[Any], completions: list[Any], scores: list[float | None]) -> None:
        if prompts is not self.prompts:  # a new batch: the first reward of each call starts it
            self.prompts, self.completions, self.scores = prompts, completions, {}
        self.scores[name] = list(scores)


class RecordingReward:
    """A reward function that also hands its inputs and outputs to a `BatchRecorder`."""

    def __init__(self, func: Callable, recorder: BatchRecorder) -> None:
        self.func, self.recorder = func, recorder
        self.__name__ = getattr(func, "__name__", type(func).__name__)

    def __call__(self, completions: list[Any], prompts: list[Any] | None = None, **kwargs: Any) -> list[float | None]:
        scores = self.func(completions=completions, prompts=prompts, **kwargs)
        self.recorder.record(self.__name__, prompts or [], completions, scores)
        return scores


def record_rewards(funcs: list[Callable], recorder: BatchRecorder) -> list[Callable]:
    """Wrap the synchronous reward functions; async ones run in TRL's event loop and are left as they are."""
    return [f if inspect.iscoroutinefunction(f) else RecordingReward(f, recorder) for f in funcs]


def _text(message: Any) -> Any:
    if isinstance(message, list) and message and isinstance(message[-1], dict):
        return message[-1].get("content")
    return message


def _is_tool_rollout(completion: Any) -> bool:
    return isinstance(completion, list) and (len(completion) > 1 or any(
        isinstance(m, dict) and m.get("tool_calls") for m in completion))


class SampleLog(TrainerCallback):
    """Every `every` optimiser steps, append the latest scored batch to `samples.jsonl` (0 disables it)."""

    def __init__(self, path: Path, recorder: BatchRecorder, weights: dict[str, float], every: int) -> None:
        self.path, self.recorder, self.weights, self.every = Path(path), recorder, weights, every

    def on_step_end(self, args, state, control, **kwargs):
        if self.every <= 0 or state.global_step % self.every or not state.is_world_process_zero:
            return
        rec = self.recorder
        if not rec.completions:
            return
        with open(self.path, "a") as f:
            for i, (prompt, completion) in enumerate(zip(rec.prompts, rec.completions, strict=False)):
                scores = {name: values[i] for name, values in rec.scores.items() if i < len(values)}
                total = sum(self.weights.get(n, 1.0) * s for n, s in scores.items() if s is not None)
                row = {"step": state.global_step, "prompt": _text(prompt), "completion": _text(completion),
                       "rewards": scores, "reward": total}
                if _is_tool_rollout(completion):  # keep every turn: the calls, the tool replies, the answer
                    row["transcript"] = completion
                f.write(json.dumps(row, default=str) + "\n")


class AccuracyLog(TrainerCallback):
    """Adds `accuracy` to each log record: the mean of the first reward that `measures_correctness`, whatever its
    name in the preset."""

    def __init__(self, rewards: list[Any]) -> None:
        from rlr.rewards.base import measures_correctness
        from rlr.trl_internals import reward_mean_key

        first = next((r for r in rewards if measures_correctness(r)), None)
        self.key = reward_mean_key(getattr(first, "__name__", "")) if first is not None else None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is not None and self.key and isinstance(logs.get(self.key), (int, float)):
            logs["accuracy"] = logs[self.key]
