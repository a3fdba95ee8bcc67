"""`rlr estimate PRESET [--memory 24GB]`: will each training stage fit, how long is a step, what would make it fit.

Validated against measured peaks (BENCHMARKS.md, tests/bench/bench_memory.py): the number is the training
process's own allocations (torch.cuda.max_memory_allocated on a GPU); the CUDA context and the allocator's
fragmentation come on top, so the verdict keeps a headroom for them.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any

from rlr.config.load import LoadedConfig
from rlr.errors import UserError
from rlr.estimate.memory import MemoryEstimate, StagePlan, estimate_memory
from rlr.estimate.speed import DeviceSpeed, known_speed, measure_speed, step_seconds

GiB = 2**30
CUDA_CONTEXT_BYTES = 0.75 * GiB  # the CUDA context + cuBLAS workspaces: outside max_memory_allocated
FRAGMENTATION = 0.10  # the caching allocator's slack over what is allocated
# glibc's heap keeps freed tensors: peak RSS was 1.2-1.5x the live peak in BENCHMARKS.md's runs
CPU_FRAGMENTATION = 0.5
UNITS = {"": GiB, "g": GiB, "gb": GiB, "gib": GiB, "m": 2**20, "mb": 2**20, "mib": 2**20, "t": 2**40, "tb": 2**40,
         "tib": 2**40}


def parse_memory(text: str, key: str = "--memory") -> float:
    """'24GB', '80 GiB', '512MB' -> bytes (GB and GiB both mean 2^30: a '24GB' card holds 24 GiB)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    if not m or m.group(2).lower() not in UNITS:
        raise UserError(f"{key}: '{text}' is not a memory size; write e.g. 24GB, 80GiB or 512MB")
    return float(m.group(1)) * UNITS[m.group(2).lower()]


def target_device(loaded: LoadedConfig, requested: str) -> tuple[str, str]:
    """(cuda|cpu, why). auto: this machine's CUDA GPU; on a CPU machine, a preset written for a GPU (half-precision
    dtype, 4-bit, vLLM) is estimated for the GPU it was written for."""
    if requested in ("cuda", "cpu"):
        return requested, "--device"
    if requested != "auto":
        raise UserError(f"--device: '{requested}' is not one of auto, cuda, cpu")
    import torch

    if torch.cuda.is_available():
        return "cuda", "this machine"
    cfg = loaded.cfg
    if cfg.model.dtype in ("bfloat16", "float16") or cfg.model.load_in_4bit or cfg.rl.trainer.get("use_vllm"):
        return "cuda", f"a GPU preset (model.dtype {cfg.model.dtype}); --device cpu estimates this machine"
    return "cpu", "this machine"


def _dtype(loaded: LoadedConfig, device: str) -> str:
    if device == "cpu":
        return "float32"  # rlr trains in fp32 on CPU whatever the preset says (rlr.device)
    return loaded.cfg.model.dtype if loaded.cfg.model.dtype != "auto" else "bfloat16"


def _budget(loaded: LoadedConfig, device: str, memory: str | None) -> tuple[float | None, str]:
    if memory:
        return parse_memory(memory), "--memory"
    if loaded.cfg.estimate.memory:
        return parse_memory(loaded.cfg.estimate.memory, "estimate.memory"), "estimate.memory"
    if device == "cuda":
        import torch

        if torch.cuda.is_available():
            return float(torch.cuda.get_device_properties(0).total_memory), torch.cuda.get_device_name(0)
        return None, "no --memory given"
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")), "this machine's RAM"
    except (ValueError, OSError):
        return None, "no --memory given"


def _speed(loaded: LoadedConfig, device: str, dtype: str, tflops: float | None, bandwidth: float | None
           ) -> DeviceSpeed:
    est = loaded.cfg.estimate
    tflops, bandwidth = tflops or est.tflops, bandwidth or est.bandwidth_gbs
    if tflops and bandwidth:
        return DeviceSpeed(tflops, bandwidth, "given")
    import torch

    if device == "cpu" or torch.cuda.is_available():
        base = measure_speed(device, dtype)
    else:
        base = known_speed("h100")
        base = DeviceSpeed(base.tflops, base.bandwidth_gbs, "assumed H100 (achieved rates); give --tflops and "
                           "--bandwidth-gbs (or estimate.tflops / estimate.bandwidth_gbs) for your GPU")
    return DeviceSpeed(tflops or base.tflops, bandwidth or base.bandwidth_gbs,
                       base.source if not (tflops or bandwidth) else f"given + {base.source}")


def _needed(est: MemoryEstimate, device: str) -> float:
    """What must be free on the device: the estimate, plus the CUDA context and the allocator's slack."""
    if device == "cuda":
        return est.peak * (1 + FRAGMENTATION) + CUDA_CONTEXT_BYTES
    return est.peak * (1 + CPU_FRAGMENTATION)


def knobs(shape: Any, plan: StagePlan, budget: float, device: str) -> list[dict[str, Any]]:
    """Settings that would make the stage fit: each alone if one suffices, else the cheapest combination."""
    section = "sft" if plan.stage == "sft" else "rl"
    options: list[tuple[str, dict[str, Any]]] = []
    if not plan.checkpointing:
        options.append((f"{section}.trainer.gradient_checkpointing=true", {"checkpointing": True}))
    rows, accum = plan.rows, plan.grad_accum
    while rows > 1:
        rows, accum = rows // 2, accum * 2
        options.append((f"{section}.trainer.per_device_train_batch_size={rows} "
                        f"{section}.trainer.gradient_accumulation_steps={accum} (same batch)",
                        {"rows": rows, "grad_accum": accum}))
    if plan.lora_targets is None:
        options.append((f"{section}.use_lora=true", {"lora_targets": ("all-linear",)}))
        if "8bit" not in plan.optim:
            options.append((f"{section}.trainer.optim=adamw_8bit (bitsandbytes)", {"optim": "adamw_8bit"}))
    elif device == "cuda" and not plan.load_in_4bit:
        options.append(("model.load_in_4bit=true (QLoRA)", {"load_in_4bit": True}))
    if plan.stage == "rl":
        if plan.vllm is None and plan.generation_rows > plan.rows:
            options.append((f"rl.trainer.generation_batch_size={plan.rows}", {"generation_rows": plan.rows}))
        if plan.vllm == "colocate" and plan.vllm_share > 0.1:
            options.append(("rl.trainer.vllm_gpu_memory_utilization=0.1", {"vllm_share": 0.1}))
        for length in (plan.completion_tokens // 2, plan.completion_tokens // 4):
            if length >= 16:
                options.append((f"rl.trainer.max_completion_length={length}",
                                {"completion_tokens": length, "seq": plan.prompt_tokens + length}))
    elif plan.seq > 256:
        options.append((f"sft.trainer.max_length={plan.seq // 2}", {"seq": plan.seq // 2}))

    def peak(p: StagePlan) -> float:
        return _needed(estimate_memory(shape, p, budget), device)

    alone = [{"set": text, "peak_gib": round(peak(dataclasses.replace(plan, **change)) / GiB, 2)}
             for text, change in options if peak(dataclasses.replace(plan, **change)) <= budget]
    if alone:
        return alone[:4]
    combined, chosen = plan, []
    for text, change in options:  # greedy: keep adding until it fits
        combined = dataclasses.replace(combined, **change)
        chosen.append(text)
        if peak(combined) <= budget:
            return [{"set": " + ".join(chosen), "peak_gib": round(peak(combined) / GiB, 2)}]
    return []


def stage_report(shape: Any, plan: StagePlan, budget: float | None, device: str, speed: DeviceSpeed,
                 max_steps: int | None) -> dict[str, Any]:
    est = estimate_memory(shape, plan, budget)

    def parts(items):
        return [{"part": p.name, "gib": round(p.bytes / GiB, 4), "note": p.note} for p in items]

    timing = step_seconds(shape, plan, speed)
    report: dict[str, Any] = {
        "resident": parts(est.resident),
        "training": parts(est.training),
        "generation": parts(est.generation),
        "gradients_gib": round(est.gradients.bytes / GiB, 4) if est.gradients else 0.0,
        "activations_gib": {"without_checkpointing": round(est.activations_without_checkpointing / GiB, 4),
                            "with_checkpointing": round(est.activations_with_checkpointing / GiB, 4),
                            "used": "with" if plan.checkpointing else "without"},
        "trainable_params": est.trainable_params,
        "training_peak_gib": round(est.training_peak / GiB, 3),
        "generation_peak_gib": round(est.generation_peak / GiB, 3) if est.generation else None,
        "peak_gib": round(est.peak / GiB, 3),
        "needed_gib": round(_needed(est, device) / GiB, 3),
        "tokens_per_step": int(timing["tokens"]),  # trained (prompt + completion) per optimiser step
        "generated_tokens_per_step": int(timing["generated"]) if "generated" in timing else None,
        "step_s": round(timing["step_s"], 4),
        "train_s": round(timing["train_s"], 4),
        "generation_s": round(timing["generation_s"], 4) if "generation_s" in timing else None,
    }
    if max_steps and max_steps > 0:
        report["total_h"] = round(timing["step_s"] * max_steps / 3600, 3)
    if budget is not None:
        report["fits"] = _needed(est, device) <= budget
        if not report["fits"]:
            report["make_it_fit"] = knobs(shape, plan, budget, device)
    return report


def run_estimate(loaded: LoadedConfig, memory: str | None = None, device: str = "auto", tflops: float | None = None,
                 bandwidth_gbs: float | None = None, measure_data: bool = True) -> dict[str, Any]:
    from rlr.estimate.plan import measured_lengths, shape_of, stage_plan, trainer_settings

    cfg = loaded.cfg
    shape = shape_of(loaded)
    target, why = target_device(loaded, device)
    dtype = _dtype(loaded, target)
    budget, budget_source = _budget(loaded, target, memory)
    speed = _speed(loaded, target, dtype, tflops, bandwidth_gbs)
    notes: list[str] = []
    lengths = measured_lengths(loaded) if measure_data else None
    stages = [s for s in ("sft", "rl") if s in cfg.pipeline.stages]
    out: dict[str, Any] = {
        "preset": str(loaded.path),
        "model": {"name_or_path": cfg.model.name_or_path, "params": shape.params(), "source": shape.source,
                  "shape": dataclasses.asdict(shape)},
        "device": {"target": target, "why": why, "dtype": dtype},
        "memory_gib": round(budget / GiB, 2) if budget else None, "memory_source": budget_source,
        "speed": dataclasses.asdict(speed), "stages": {}, "notes": notes,
    }
    for stage in stages:
        plan = stage_plan(loaded, stage, target, dtype, lengths, notes, shape.max_positions)
        max_steps = trainer_settings(loaded, stage, target).get("max_steps")
        out["stages"][stage] = stage_report(shape, plan, budget, target, speed, max_steps)
    if target == "cuda":
        notes.append(f"needed = peak x {1 + FRAGMENTATION:.2f} + {CUDA_CONTEXT_BYTES / GiB:.2f} GiB (CUDA context and "
                     "allocator slack, which torch.cuda.max_memory_allocated does not count)")
    else:
        notes.append(f"cpu: needed = peak x {1 + CPU_FRAGMENTATION:.1f} (glibc keeps freed tensors in its heap); the "
                     "Python process with torch/transformers/TRL, the data and the Trainer adds ~0.5 GB")
    return out


def estimate_section(loaded: LoadedConfig) -> dict[str, Any]:
    """What `rlr validate` shows: the estimate, or the reason there is none (validation does not fail on it)."""
    try:
        return run_estimate(loaded)
    except UserError as e:
        return {"error": str(e)}
