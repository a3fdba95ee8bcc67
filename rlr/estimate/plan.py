"""From a preset to the numbers the estimate needs: TRL's effective settings and the token counts.

The TRL values are the kwargs `rlr validate` shows (rlr defaults < bundle < preset) over the TRL config class's
own defaults, for the *target* device: estimating a GPU run on a CPU machine must not inherit rlr's CPU defaults
(gradient checkpointing off, fp32). Token counts are worst cases (the longest sample: OOM shows at the largest
batch, not the average one): the longest prepared prompt when the data and tokenizer are on disk, else
data.max_prompt_tokens, else an assumed 512 that the output names.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from rlr.config.load import LoadedConfig
from rlr.estimate.memory import StagePlan

ASSUMED_PROMPT_TOKENS = 512


def trainer_settings(loaded: LoadedConfig, stage: str, device: str) -> dict[str, Any]:
    """TRL config values (class defaults + what rlr would pass) without constructing the config: a GPU config
    refuses to build on a CPU machine (bf16 needs CUDA)."""
    from rlr.checks import TRL_CONFIGS
    from rlr.config.coerce import Problems
    from rlr.device import DeviceInfo
    from rlr.train.trainers import config_class

    cls = config_class("sft" if stage == "sft" else loaded.cfg.rl.trainer_type)
    defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
    on_cpu = device == "cpu"
    target = DeviceInfo(device=device, dtype="float32" if on_cpu else "bfloat16", n_gpus=0 if on_cpu else 1,
                        bf16=not on_cpu, fp16=False, use_cpu=on_cpu, name=device)
    values = {**defaults, **TRL_CONFIGS[stage].trl_config_kwargs(loaded, target, Problems(loaded.origins))}
    if values.get("activation_checkpointing") is not None:  # the newer name wins when set
        values["gradient_checkpointing"] = values["activation_checkpointing"]
    return values


def measured_lengths(loaded: LoadedConfig, max_rows: int = 2000) -> dict[str, int] | None:
    """Longest prompt and longest prompt + solution of the prepared train split, in the model's tokens (None when
    the data is not prepared or the tokenizer is not on disk)."""
    from rlr.data.prepared import split_path

    path = split_path(loaded.cfg, "train")
    if not path.is_file():
        return None
    try:
        from rlr.models.loading import load_tokenizer

        tok = load_tokenizer(loaded.cfg.model.name_or_path, loaded.cfg.model)
    except Exception:  # no local tokenizer (hub id offline): fall back to the preset's numbers
        return None
    prompt_max = full_max = 0
    with open(path) as f:
        for n, line in enumerate(f):
            if n >= max_rows:
                break
            row = json.loads(line)
            prompt, solution = row["prompt"], row.get("solution") or ""
            if isinstance(prompt, list):
                p = _tokens_of(tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True))
                full = _tokens_of(tok.apply_chat_template([*prompt, {"role": "assistant", "content": solution}],
                                                          tokenize=True))
            else:
                p = len(tok(prompt)["input_ids"])
                full = p + len(tok(solution)["input_ids"]) + 1
            prompt_max, full_max = max(prompt_max, p), max(full_max, full)
    return {"prompt": prompt_max, "full": full_max, "rows": min(n + 1, max_rows), "file": str(path)}


def _tokens_of(value: Any) -> int:
    """apply_chat_template(tokenize=True) returns a list in transformers 5 and a BatchEncoding in some versions."""
    return len(value["input_ids"]) if isinstance(value, dict) or hasattr(value, "keys") else len(value)


def stage_plan(loaded: LoadedConfig, stage: str, device: str, dtype: str, lengths: dict[str, int] | None,
               notes: list[str], max_positions: int | None = None) -> StagePlan:
    cfg = loaded.cfg
    values = trainer_settings(loaded, stage, device)
    section = cfg.sft if stage == "sft" else cfg.rl
    lora = cfg.lora
    targets = None
    if section.use_lora:
        targets = (lora.target_modules,) if isinstance(lora.target_modules, str) else tuple(lora.target_modules)
    common = dict(stage=stage, dtype=dtype, load_in_4bit=cfg.model.load_in_4bit, lora_targets=targets,
                  lora_r=lora.r, lora_dropout=lora.dropout, rows=int(values["per_device_train_batch_size"]),
                  grad_accum=int(values.get("gradient_accumulation_steps") or 1),
                  checkpointing=bool(values.get("gradient_checkpointing")), optim=str(values.get("optim")),
                  attention=cfg.model.attn_implementation or "sdpa")
    if stage == "sft":
        max_length = values.get("max_length") or 1024
        seq = int(max_length)
        if lengths:
            seq = min(seq, lengths["full"])
            notes.append(f"sft: longest prepared row is {lengths['full']} tokens (max_length {max_length})")
        else:
            notes.append(f"sft: sequences assumed at max_length {max_length} (prepare the data to measure them)")
        if max_positions and seq > max_positions:
            seq = max_positions
            notes.append(f"sft: sequences capped at the model's max_position_embeddings {max_positions}")
        return StagePlan(seq=seq, **common)
    if lengths:
        prompt = lengths["prompt"]
        notes.append(f"rl: longest prepared prompt is {prompt} tokens ({lengths['rows']} rows of {lengths['file']})")
    elif cfg.data.max_prompt_tokens:
        prompt = cfg.data.max_prompt_tokens
        notes.append(f"rl: prompts up to data.max_prompt_tokens = {prompt} tokens")
    else:
        prompt = ASSUMED_PROMPT_TOKENS
        notes.append(f"rl: prompt length assumed {prompt} tokens (prepare the data or set data.max_prompt_tokens)")
    completion = int(values["max_completion_length"])
    if max_positions and prompt + completion > max_positions:
        prompt = max(1, max_positions - completion)
        notes.append(f"rl: prompt + completion capped at the model's max_position_embeddings {max_positions}")
    steps_per_generation = int(values.get("steps_per_generation") or common["grad_accum"])
    generation_rows = int(values.get("generation_batch_size") or common["rows"] * steps_per_generation)
    vllm = str(values.get("vllm_mode") or "colocate") if values.get("use_vllm") else None
    return StagePlan(seq=prompt + completion, prompt_tokens=prompt, completion_tokens=completion,
                     generation_rows=generation_rows, beta=float(values.get("beta") or 0.0), vllm=vllm,
                     vllm_share=float(values.get("vllm_gpu_memory_utilization") or 0.0), **common)


def shape_of(loaded: LoadedConfig) -> Any:
    from rlr.estimate.shape import model_shape

    cfg = loaded.cfg
    return model_shape(cfg.model.name_or_path, Path(loaded.base_dir), dict(cfg.estimate.model_config),
                       cfg.model.revision)
