"""`rl.alarms`: watch TRL's logged metrics for the ways an RL run goes wrong quietly, and warn or stop.

A run that has stopped learning still burns GPU hours and still ends "complete". Each alarm reads one signal TRL
already logs (key names: rlr/trl_internals.py) and trips after `patience` consecutive logged steps past its
threshold: no learning signal (every group's rewards equal), completions at the length cap, entropy collapse, KL
running away from the reference (beta > 0), a non-correctness reward rising while the correctness reward stays
flat (the policy learned the reward, not the task), and NaN/inf. In `warn` mode it prints one line and marks the
step in metrics.jsonl (`alarm`); in `stop` mode it also saves a checkpoint (never of a NaN model), stops
training and the stage exits 1 with one message naming the alarm, the values, the checkpoints and the fix.

It is a plain TrainerCallback: the stop is raised from on_train_end, after the Trainer has written the checkpoint
the alarm asked for, so the run directory is resumable (`--resume`) once the preset is changed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from rlr.errors import RunStopped
from rlr.trl_internals import (
    LOG_CLIPPED_RATIO,
    LOG_ENTROPY,
    LOG_FRAC_REWARD_ZERO_STD,
    LOG_GRAD_NORM,
    LOG_KL,
    LOG_LOSS,
    reward_mean_key,
)

FIXES = {
    "no_signal": "every group's completions got the same reward, so the advantages are zero: check the rewards on "
                 "real completions (rlr rewards check PRESET), start from a stronger model (SFT first) or an easier "
                 "task, raise rl.trainer.num_generations, or set rl.dynamic_sampling.enabled=true",
    "clipped": "completions run to the cap without an end-of-sequence token: raise rl.trainer.max_completion_length, "
               "check that the chat template's EOS is the token the model emits, or shape lengths with "
               "rl.overlong_buffer",
    "entropy_collapse": "the policy became deterministic and no longer explores: lower rl.trainer.learning_rate, "
                        "raise rl.trainer.temperature, or set rl.trainer.beta > 0",
    "kl_blowup": "the policy ran away from the reference: lower rl.trainer.learning_rate or raise rl.trainer.beta",
    "reward_hacking": "the policy is learning {names} without answering more correctly: lower their weight "
                      "(rewards[i].weight), make them stricter, and read rl/samples.jsonl",
    "nan": "lower the learning rate (rl.trainer.learning_rate; and rl.trainer.max_grad_norm); check the rewards for "
           "extreme values",
}
CONDITIONS = {"no_signal": f"{LOG_FRAC_REWARD_ZERO_STD} >= {{t}}", "clipped": f"{LOG_CLIPPED_RATIO} >= {{t}}",
              "entropy_collapse": f"{LOG_ENTROPY} < {{t}}", "kl_blowup": f"{LOG_KL} > {{t}}",
              "nan": "a NaN/inf loss, grad_norm or weight"}


@dataclass
class Trip:
    name: str
    step: int
    condition: str
    values: list[tuple[int, Any]]
    first_step: int
    fix: str


@dataclass
class _State:
    streak: list[tuple[int, Any]] = field(default_factory=list)
    warned: bool = False


def _number(logs: dict[str, Any], key: str) -> float | None:
    value = logs.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class RunAlarms(TrainerCallback):
    def __init__(self, alarms: Any, rewards: list[Any], beta: float, output_dir: Path, preset: str):
        from rlr.rewards.base import measures_correctness, watched_for_hacking

        self.specs = {name: getattr(alarms, name) for name in
                      ("no_signal", "clipped", "entropy_collapse", "kl_blowup", "reward_hacking", "nan")}
        if not beta:
            self.specs.pop("kl_blowup")  # TRL logs no kl without a reference
        names = [getattr(r, "__name__", "") for r in rewards]
        correct = [n for n, r in zip(names, rewards, strict=True) if measures_correctness(r)]
        self.correct_key = reward_mean_key(correct[0]) if correct else None
        self.other_keys = {reward_mean_key(n): n for n, r in zip(names, rewards, strict=True)
                           if watched_for_hacking(r)}
        self.history: dict[str, list[float]] = {}
        self.state = {name: _State() for name in self.specs}
        self.output_dir, self.preset = Path(output_dir), preset
        self.tripped: Trip | None = None
        self.fired: list[tuple[int, str]] = []
        self._mark: str | None = None  # an alarm on_step_end raised, written into the next log record
        self._hacked: list[str] = []  # the rewards reward_hacking saw rising
        self._check_weights = True

    # --- the signals ---------------------------------------------------------------------------------------
    def _value(self, name: str, logs: dict[str, Any]) -> tuple[bool, Any] | None:
        """(past the threshold?, the value shown) for this step, or None when the step does not log the signal."""
        spec = self.specs[name]
        if name == "nan":
            bad = [f"{k}={logs[k]}" for k in (LOG_LOSS, LOG_GRAD_NORM)
                   if isinstance(logs.get(k), float) and not math.isfinite(logs[k])]
            return (bool(bad), ", ".join(bad) or "finite") if LOG_LOSS in logs else None
        if name == "reward_hacking":
            return self._reward_hacking(spec)
        key = {"no_signal": LOG_FRAC_REWARD_ZERO_STD, "clipped": LOG_CLIPPED_RATIO, "entropy_collapse": LOG_ENTROPY,
               "kl_blowup": LOG_KL}[name]
        value = _number(logs, key)
        if value is None:
            return None
        past = value < spec.threshold if name == "entropy_collapse" else (
            value > spec.threshold if name == "kl_blowup" else value >= spec.threshold)
        return past, round(value, 4)

    def _reward_hacking(self, spec: Any) -> tuple[bool, Any] | None:
        w = max(1, spec.patience)
        correct = self.history.get(self.correct_key or "", [])
        if self.correct_key is None or not self.other_keys or len(correct) < 2 * w:
            return None

        def rise(values: list[float]) -> float:
            return sum(values[-w:]) / w - sum(values[:w]) / w

        flat = rise(correct) < spec.flat
        rising = {name: rise(self.history[key]) for key, name in self.other_keys.items()
                  if len(self.history.get(key, [])) >= 2 * w}
        hacked = {n: r for n, r in rising.items() if r >= spec.threshold}
        self._hacked = list(hacked)
        shown = ", ".join(f"{n} rose {r:+.3g}" for n, r in hacked.items())
        return bool(hacked) and flat, f"{shown}; {self.correct_key} rose {rise(correct):+.3g}"

    # --- callback hooks ----------------------------------------------------------------------------------
    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or LOG_LOSS not in logs:  # the end-of-training summary log carries no step metrics
            return
        for key in [self.correct_key, *self.other_keys]:
            value = _number(logs, key) if key else None
            if value is not None:
                self.history.setdefault(key, []).append(value)
        step = state.global_step
        if self._mark:
            logs["alarm"], self._mark = self._mark, None
        for name, spec in self.specs.items():
            if not spec.enabled or self.tripped is not None:
                continue
            seen = self._value(name, logs)
            if seen is None:
                continue
            past, value = seen
            st = self.state[name]
            if not past:
                st.streak, st.warned = [], False
                continue
            st.streak.append((step, value))
            patience = 1 if name == "reward_hacking" else max(1, spec.patience)  # there it is the window
            if len(st.streak) < patience:
                continue
            logs["alarm"] = name if "alarm" not in logs else f"{logs['alarm']},{name}"
            self.fired.append((step, name))
            trip = self._trip(name, step, st.streak[-patience:])
            if spec.mode == "stop":
                self.tripped = trip
                control.should_training_stop = True
                control.should_save = name != "nan"  # never checkpoint a poisoned model
            elif not st.warned:
                st.warned = True
                self._warn(trip, state)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        """Weights that became inf/NaN in this update make the next generate() fail inside torch.multinomial,
        before any NaN loss is logged: catch them here (one fused norm over the trainable parameters)."""
        spec = self.specs.get("nan")
        if spec is None or not spec.enabled or self.tripped is not None or model is None or not self._check_weights:
            return
        import torch

        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            return
        try:
            norms = torch._foreach_norm([p.detach() for p in params])
            finite = bool(torch.isfinite(torch.stack([n.float().to(norms[0].device) for n in norms])).all())
        except Exception:  # sharded parameters (FSDP DTensors, ZeRO-3) this cannot read: the loss check remains
            self._check_weights = False
            return
        if finite:
            return
        trip = self._trip("nan", state.global_step, [(state.global_step, "non-finite trainable weights")])
        self.fired.append((state.global_step, "nan"))
        self._mark = "nan"
        if spec.mode == "stop":
            self.tripped = trip
            control.should_training_stop = True
            control.should_save = False
        else:
            self._warn(trip, state)

    def on_train_end(self, args, state, control, **kwargs):
        if self.tripped is not None:
            raise RunStopped(self.message(self.tripped))

    # --- messages ----------------------------------------------------------------------------------------
    def _trip(self, name: str, step: int, streak: list[tuple[int, Any]]) -> Trip:
        spec = self.specs[name]
        if name == "reward_hacking":
            w = max(1, spec.patience)
            condition = (f"over the first and the last {w} logged steps a non-correctness reward rose by >= "
                         f"{spec.threshold} while {self.correct_key} rose by < {spec.flat}")
            fix = FIXES[name].format(names=", ".join(self._hacked) or "those rewards")
        else:
            condition = CONDITIONS[name].format(t=spec.threshold)
            if name != "nan":
                condition += f" for {len(streak)} logged step{'s' if len(streak) > 1 else ''}"
            fix = FIXES[name]
        first = step - max(1, spec.patience) + 1 if name == "reward_hacking" else streak[0][0]  # the last window
        return Trip(name, step, condition, list(streak), first, fix)

    def _warn(self, trip: Trip, state: Any) -> None:
        if not state.is_world_process_zero:
            return
        from rlr.console import stderr

        stderr.print(f"[yellow]alarm {trip.name} (warn) at step {trip.step}: {trip.condition} "
                     f"({self._values(trip)}); {trip.fix}[/yellow]", highlight=False)

    @staticmethod
    def _values(trip: Trip) -> str:
        return ", ".join(f"step {s}: {v}" for s, v in trip.values)

    def message(self, trip: Trip) -> str:
        from rlr.train.loop import checkpoints, last_checkpoint

        saved = next((str(p) for p in checkpoints(self.output_dir) if p.name == f"checkpoint-{trip.step}"), None)
        good = next((str(p) for p in checkpoints(self.output_dir) if int(p.name.split("-")[1]) < trip.first_step),
                    None)
        if trip.name == "nan":
            good = last_checkpoint(self.output_dir)
            kept = "no checkpoint of the NaN model was saved"
        else:
            kept = f"the model at step {trip.step} is saved in {saved}" if saved else "no checkpoint could be saved"
        return (f"alarm {trip.name} at step {trip.step}: {trip.condition} ({self._values(trip)}); {kept}; last good "
                f"checkpoint (before step {trip.first_step}): {good or 'none'}; to change: {trip.fix}; then rerun "
                f"`rlr train-rl {self.preset} --resume` (or --overwrite), or set rl.alarms.{trip.name}.mode=warn")
