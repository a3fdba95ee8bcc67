"""The skeleton sft and rl share, in the order a training stage runs it.

1. `prepare`: refuse what cannot work before anything is written (contradicting flags, QLoRA without LoRA, a stage
   directory that may not be touched, `--resume` without a checkpoint) and resolve the device once.
2. `load_policy`: the starting model (earlier adapters merged in: a stage trains a new LoRA on top, or all weights)
   and the PEFT config of the LoRA it trains.
3. `begin`: the run directory's lifecycle: resolved config, manifest (running -> complete or failed), lock.
4. `save_model`: `<stage>/model/` plus its lineage, written by the main process only.
5. `summary`: one shape for both stages (the keys below, then each stage's own), `wall_s` as in every stage.

What differs stays in the stage: sft builds its trainer before `begin` (TRL's rejection of a setting is bad input and
leaves nothing behind), rl after it (the trainer writes into the stage directory: samples, the reference weights).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlr.errors import UserError
from rlr.models.references import ModelRef
from rlr.runs import StageRun
from rlr.stage import StageOptions

# the keys every training summary has, in this order (then the stage's own: losses for sft, rewards for rl)
SUMMARY_KEYS = ("stage", "model_dir", "steps", "train_time_s", "trainable_params", "use_lora", "resumed_from",
                "metrics", "wall_s")


@dataclass
class TrainingStart:
    """What `prepare` established: where the stage writes, on what device, from which checkpoint."""

    stage: str
    run: StageRun
    device: Any
    checkpoint: str | None
    started: float = field(default_factory=time.time)


def prepare(cfg: Any, opts: StageOptions, stage: str, use_lora: bool) -> TrainingStart:
    from rlr.device import resolve_device
    from rlr.train.loop import resume_checkpoint
    from rlr.trl_internals import check_trl_version

    started = time.time()
    check_trl_version()  # a TRL outside the tested minor version: say so before the model loads and hours of training
    if opts.resume and opts.overwrite:
        raise UserError("--resume and --overwrite contradict each other; pass one of them")
    if cfg.model.load_in_4bit and not use_lora:
        raise UserError(f"model.load_in_4bit (QLoRA) trains a LoRA adapter on frozen 4-bit weights; set "
                        f"{stage}.use_lora=true or model.load_in_4bit=false")
    run = StageRun.of(cfg, stage)
    run.check_can_start(overwrite=opts.overwrite, resume=opts.resume)
    checkpoint = resume_checkpoint(run, opts.resume)  # a --resume without a checkpoint fails here, not mid-run
    return TrainingStart(stage, run, resolve_device(cfg.model.dtype), checkpoint, started)


def load_policy(init: ModelRef, cfg: Any, device: Any, use_lora: bool) -> tuple[Any, Any]:
    """(model, peft_config): LoRA targets checked against the model, or every weight trainable for a full run."""
    from rlr.models.loading import check_lora_targets, load_model_ref, peft_lora_config

    model = load_model_ref(init, cfg.model, device, merge=True)
    if use_lora:
        check_lora_targets(model, cfg.lora)
        return model, peft_lora_config(cfg.lora)
    model.requires_grad_(True)  # peft froze the base while an earlier adapter was attached; merging keeps that
    return model, None


def begin(start: TrainingStart, cfg: Any, opts: StageOptions, inputs: dict[str, Any]) -> StageRun:
    """Open the stage directory (the resolved config, a running manifest); use as `with begin(...) as run:`."""
    from rlr.config.coerce import to_dict

    return start.run.start(config=to_dict(cfg), overwrite=opts.overwrite, resume=opts.resume,
                           device=start.device.as_dict(), inputs=inputs)


def model_dir(cfg: Any, stage: str) -> Path:
    from rlr.paths import stage_model_dir

    return stage_model_dir(cfg, stage).resolve()


def save_model(trainer: Any, directory: Path, lineage: ModelRef | None) -> Path:
    """The weights or adapter and the tokenizer (TRL saves processing_class), and the lineage that says what lies
    underneath an adapter; one writer under accelerate launch."""
    from rlr.models.references import write_lineage
    from rlr.runs import is_main_process

    trainer.save_model(str(directory))
    if lineage is not None and is_main_process():
        write_lineage(directory, lineage)
    return directory


def summary(start: TrainingStart, trainer: Any, directory: Path, result: Any, train_s: float, use_lora: bool,
            **specific: Any) -> dict[str, Any]:
    """The stage summary (printed, `--json`, the manifest's outputs): shared keys, then the stage's own.

    train_time_s is the Trainer's own train_runtime (`train_s`, timed around trainer.train, when it has none)."""
    train_time = (getattr(result, "metrics", None) or {}).get("train_runtime", train_s)
    return {
        "stage": start.stage,
        "model_dir": str(directory),
        "steps": trainer.state.global_step,
        **specific,
        "train_time_s": round(float(train_time), 2),
        "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "use_lora": use_lora,
        "resumed_from": start.checkpoint,
        "metrics": str(start.run.metrics_path),
        "wall_s": round(time.time() - start.started, 2),  # the key every stage summary uses
    }
