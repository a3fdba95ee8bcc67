"""`rlr sft PRESET`: supervised fine-tuning on worked solutions -> runs/<name>/sft/.

A recipe in the order it runs: refuse what cannot work (before anything is written), read the prepared rows,
load the starting model and tokenizer, build TRL's SFTTrainer, train with rlr's hygiene (resume, Ctrl-C, NaN
guard, metrics), save a standard HF model directory that the next stages and plain transformers/peft load.

Full-parameter training (`sft.use_lora: false`) is a first-class path, not an afterthought: the offline tiny
model starts from random weights, and LoRA on a random model learns almost nothing (measured: the loss barely
moves in the steps that take full-parameter SFT from 6.0 to 2.2).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rlr.config.load import LoadedConfig
from rlr.errors import UserError
from rlr.models.references import ModelRef
from rlr.runs import StageRun
from rlr.stage import StageOptions


def resolve_init(cfg: Any) -> ModelRef:
    """sft.init_from: base (default), a stage of this run, or a model/adapter path; local paths made absolute
    so the lineage written next to the adapter still loads from any working directory."""
    from rlr.models.references import resolve_model_ref

    ref = resolve_model_ref(cfg.sft.init_from or "base", cfg)
    if Path(ref.base).exists():
        ref.base = str(Path(ref.base).resolve())
    own = StageRun.of(cfg, "sft").path.resolve()
    if any(Path(p).resolve().is_relative_to(own) for p in [ref.base, *ref.adapters] if Path(p).exists()):
        raise UserError(f"sft.init_from={cfg.sft.init_from} lies inside this stage's own directory ({own}), which "
                        "the new run replaces; copy that model elsewhere or use another run.name")
    return ref


def data_hashes(cfg: Any) -> dict[str, str]:
    """Content hashes of the prepared files, train.jsonl's computed from the file read (and checked against the
    data manifest), the others as prepare-data recorded them."""
    from rlr.data.prepared import verified_split

    outputs = StageRun.of(cfg, "data").manifest().get("outputs") or {}
    hashes = {name: out["sha256"] for name, out in outputs.items() if isinstance(out, dict) and out.get("sha256")}
    path, sha = verified_split(cfg, "train")
    return {**hashes, path.name: sha}


def build_trainer(model: Any, args: Any, dataset: Any, eval_dataset: Any, tokenizer: Any, peft_config: Any,
                  callbacks: list[Any] | None) -> Any:
    from trl import SFTTrainer

    try:
        return SFTTrainer(model=model, args=args, train_dataset=dataset, eval_dataset=eval_dataset,
                          processing_class=tokenizer, peft_config=peft_config, callbacks=callbacks)
    except ValueError as e:  # TRL's cross-checks of settings and data (padding_free vs max_length, ...)
        raise UserError(f"sft.trainer: trl.SFTTrainer rejected the settings: {str(e).splitlines()[0]}") from None


def loss_history(trainer: Any) -> list[float]:
    return [float(entry["loss"]) for entry in trainer.state.log_history if "loss" in entry]


def tokens_per_second(trainer: Any, start_step: int, train_time: float) -> float | None:
    """Tokens trained in this attempt per second (TRL's counter and its resume quirk: rlr/trl_internals.py)."""
    from rlr.trl_internals import sft_tokens_per_second

    return sft_tokens_per_second(trainer.state.log_history, start_step, train_time)


def warn_if_not_reached(stop_at: Any, steps: int) -> None:
    if stop_at.reached_at is not None:
        return
    from rlr.console import stderr

    last = stop_at.history[-1][stop_at.spec.metric] if stop_at.history else None
    seen = f"the last check gave {last:.1%}" if last is not None else "no check ran"
    stderr.print(f"[yellow]sft.stop_at: {stop_at.spec.metric} never reached {stop_at.spec.value:.0%} in {steps} steps "
                 f"({seen}); raise sft.trainer.max_steps or lower sft.stop_at.value[/yellow]")


def run_sft(loaded: LoadedConfig, opts: StageOptions, *, callbacks: list[Any] | None = None) -> dict[str, Any]:
    """The sft stage. `callbacks` are extra TrainerCallbacks (tests and programmatic use)."""
    from transformers import set_seed

    from rlr.data.prepared import load_split_dataset
    from rlr.envs.rollout_tools import tool_schemas
    from rlr.models.loading import load_tokenizer
    from rlr.train import training_stage as ts
    from rlr.train.loop import train_with_hygiene
    from rlr.train.sft_config import build_trl_config
    from rlr.train.sft_data import check_chat_template, model_turns_only, sft_dataset

    cfg = loaded.cfg
    start = ts.prepare(cfg, opts, "sft", cfg.sft.use_lora)
    args = build_trl_config(loaded, start.device)

    tools = tool_schemas(loaded)  # rl.tools: SFT prompts list them as RL's will (tool-use traces, cold start)
    dataset = sft_dataset(load_split_dataset(cfg, "train"), cfg, tools=tools)
    eval_dataset = None
    if getattr(args.eval_strategy, "value", args.eval_strategy) != "no":  # sft.trainer.eval_strategy asks for one
        eval_dataset = sft_dataset(load_split_dataset(cfg, "eval"), cfg, "eval", tools=tools)
    init = resolve_init(cfg)
    set_seed(cfg.run.seed)  # before the model: peft draws the adapter's initial weights from the global RNG
    tokenizer = load_tokenizer(init.tokenizer_source(), cfg.model, padding_side="right")
    check_chat_template(tokenizer, dataset, init.tokenizer_source())
    if cfg.sft.completion_only_loss and not cfg.sft.train_on_tool_replies:
        dataset = model_turns_only(dataset, tokenizer)  # tool-use traces: the tool replies stay out of the loss
        if "input_ids" in dataset.column_names:
            args.completion_only_loss = True  # pre-tokenized rows: TRL applies our completion_mask only when told to
            eval_dataset = model_turns_only(eval_dataset, tokenizer) if eval_dataset is not None else None
    model, peft_config = ts.load_policy(init, cfg, start.device, cfg.sft.use_lora)

    callbacks = list(callbacks or [])
    stop_at = None
    if cfg.sft.stop_at.value is not None:
        from rlr.train.stop_at import StopAtMetric

        stop_at = StopAtMetric(cfg.sft.stop_at, loaded, init.tokenizer_source())
        callbacks.append(stop_at)
    stage_path = start.run.path
    existed = stage_path.exists()
    try:
        trainer = build_trainer(model, args, dataset, eval_dataset, tokenizer, peft_config, callbacks)
    except BaseException:
        if not existed and stage_path.is_dir() and not any(stage_path.iterdir()):
            stage_path.rmdir()  # the Trainer creates output_dir in __init__; bad input must leave nothing behind
        raise
    checkpoint = start.checkpoint
    inputs = {"data": data_hashes(cfg), "init": init.as_dict(), "resumed_from": checkpoint}
    with ts.begin(start, cfg, opts, inputs) as run:
        start_step = int(Path(checkpoint).name.rsplit("-", 1)[-1]) if checkpoint else 0
        t0 = time.time()
        result = train_with_hygiene(trainer, run, resume=opts.resume, description="sft")
        train_s = time.time() - t0
        model_dir = ts.model_dir(cfg, "sft")
        # Adapters of the init model were merged before training, so loading = base + those adapters + this one.
        lineage = ModelRef(base=init.base, adapters=[*init.adapters, str(model_dir)], label="sft") \
            if cfg.sft.use_lora else None  # full weights load as they are
        ts.save_model(trainer, model_dir, lineage)
        losses = loss_history(trainer)
        summary = ts.summary(start, trainer, model_dir, result, train_s, cfg.sft.use_lora,
                             first_loss=losses[0] if losses else None, final_loss=losses[-1] if losses else None,
                             tokens_per_s=tokens_per_second(trainer, start_step, train_s))
        if stop_at is not None:
            summary["stop_at"] = stop_at.summary()
            warn_if_not_reached(stop_at, summary["steps"])
        run.finish("complete", outputs=summary)
    return summary
