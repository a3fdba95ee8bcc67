"""`sft.trainer` / `rl.trainer`: pass-through to TRL's own config classes, checked against their fields.

rlr does not re-declare TRL's ~190 GRPOConfig fields: it reads them from the dataclass, so a new TRL field
works the day TRL ships it. Keys that rlr owns are refused here with a message saying where they belong.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from rlr.config.coerce import Problems, coerce_value, suggest

# key -> where it belongs instead. rlr sets these itself, from the run directory, the seed and the machine.
OWNED_KEYS = {
    "output_dir": "rlr writes to <run.output_dir>/<run.name>/<stage>; set run.output_dir / run.name",
    "run_name": "set run.name",
    "seed": "set run.seed",
    "data_seed": "set run.seed",
    "reward_weights": "set weight: on each entry of rewards",
    "use_cpu": "rlr resolves the device from the machine; nothing to set",
    "bf16": "set model.dtype (auto: bf16 on a GPU that supports it, fp32 on CPU)",
    "fp16": "set model.dtype",
    "resume_from_checkpoint": "pass --resume",
    "overwrite_output_dir": "pass --overwrite",
}


# Counts that TRL takes as given and divides by (num_generations=0 raised ZeroDivisionError deep inside TRL; a zero
# batch size passed `rlr validate`): at least 1. max_steps may also be -1 (train by num_train_epochs).
POSITIVE_KEYS = ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
                 "num_generations", "num_generations_eval", "max_completion_length", "max_prompt_length",
                 "max_length", "steps_per_generation", "generation_batch_size", "num_iterations", "logging_steps",
                 "save_steps", "save_total_limit", "eval_steps")


def check_counts(section: str, values: dict[str, Any], problems: Problems) -> None:
    for key in POSITIVE_KEYS:
        value = values.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 1:
            problems.add(f"{section}.{key}", f"{value} must be at least 1")
    steps = values.get("max_steps")
    if isinstance(steps, int) and not isinstance(steps, bool) and (steps == 0 or steps < -1):
        problems.add(f"{section}.max_steps", f"{steps} must be a positive number of steps (or -1: train by "
                     "num_train_epochs)")
    epochs = values.get("num_train_epochs")
    if isinstance(epochs, (int, float)) and not isinstance(epochs, bool) and epochs <= 0:
        problems.add(f"{section}.num_train_epochs", f"{epochs} must be positive")


def field_types(cls: type) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # a TRL release with an annotation we cannot evaluate: fall back to raw annotations
        hints = {}
    return {f.name: hints.get(f.name, f.type) for f in dataclasses.fields(cls) if f.init}


def check_trainer_section(section: str, values: dict[str, Any], cls: type, problems: Problems) -> dict[str, Any]:
    """Validate and coerce one trainer mapping; returns the coerced values (bad keys dropped)."""
    types = field_types(cls)
    out: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{section}.{key}"
        if key in OWNED_KEYS:
            problems.add(dotted, f"rlr owns this key: {OWNED_KEYS[key]}")
            continue
        if key not in types:
            problems.add(dotted, f"not a field of trl.{cls.__name__}{suggest(key, list(types))}")
            continue
        tp = types[key]
        if isinstance(tp, str):  # unevaluated annotation: leave the value to TRL's own checks
            out[key] = value
            continue
        try:
            out[key] = coerce_value(value, tp)
        except ValueError as e:
            problems.add(dotted, str(e))
    check_counts(section, out, problems)
    return out


def rlr_trainer_defaults(stage: str, device_flags: dict[str, Any], on_cpu: bool) -> dict[str, Any]:
    """Defaults rlr puts under every TRL config; the user's trainer section overrides all but the owned keys."""
    defaults: dict[str, Any] = {"report_to": "none", "logging_steps": 1, "save_total_limit": 2}
    if on_cpu:
        # Activation checkpointing only trades compute for memory; on CPU with small models it is pure cost.
        defaults["gradient_checkpointing"] = False
        defaults["activation_checkpointing"] = False  # the newer name (TRL 1.x); unknown names are dropped below
    return defaults


def build_trainer_kwargs(
    *,
    stage: str,
    trainer_values: dict[str, Any],
    cls: type,
    output_dir: str,
    seed: int,
    run_name: str,
    device_flags: dict[str, Any],
    on_cpu: bool,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The keyword arguments of the TRL config: rlr defaults < user trainer values < rlr-owned values."""
    valid = set(field_types(cls))
    kwargs = rlr_trainer_defaults(stage, device_flags, on_cpu)
    if "activation_checkpointing" in valid:
        kwargs.pop("gradient_checkpointing", None)  # set the new name only: the old one warns
    user = dict(trainer_values)
    for old, new in (("gradient_checkpointing", "activation_checkpointing"),
                     ("gradient_checkpointing_kwargs", "activation_checkpointing_kwargs")):
        # transformers 5 reads the new name first, so rlr's CPU default for it silently beat a user's old-name
        # `gradient_checkpointing: true`; the user's setting moves to the name that is read
        if new in valid and old in user and new not in user:
            user[new] = user.pop(old)
    kwargs.update(user)
    kwargs.update(extra or {})
    kwargs.update(output_dir=output_dir, seed=seed, run_name=run_name, **device_flags)
    return {k: v for k, v in kwargs.items() if k in valid}
