"""Time per optimiser step from the token count and a device speed (measured here, or given).

Training costs ~6 FLOPs per parameter per token for full-parameter training (forward 2, backward 4), ~4 with LoRA
(no weight gradients for the frozen base), +2 with gradient checkpointing (the forward runs twice). Sampling is
memory-bound: each of the completion's decode steps reads all weights and the KV cache once, so it is priced by
memory bandwidth, plus a fixed per-layer launch overhead per decode step that dominates small models.
The device speed is an *achieved* rate: measured by a matmul and a copy on this machine (`--device` = this
machine), or given with --tflops / --bandwidth-gbs (a GPU's datasheet figure x ~0.4 is a fair achieved value).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rlr.estimate.memory import DTYPE_BYTES, StagePlan

# achieved (not datasheet) bf16 TFLOP/s and GB/s of common GPUs: ~40% of dense peak, ~80% of bandwidth
KNOWN_GPUS = {"h200": (400.0, 3800.0), "h100": (400.0, 2700.0), "a100": (125.0, 1600.0), "l40": (70.0, 700.0),
              "l4": (40.0, 240.0), "a10": (50.0, 480.0), "4090": (65.0, 800.0), "3090": (28.0, 750.0)}
DECODE_OVERHEAD_S_PER_LAYER = 2.5e-4  # python + kernel launches per layer per decode step (transformers generate)


@dataclass(frozen=True)
class DeviceSpeed:
    tflops: float
    bandwidth_gbs: float
    source: str


def measure_speed(device: str = "cpu", dtype: str = "float32") -> DeviceSpeed:
    """A 1024^3 matmul and a 64 MB copy, each timed a few times (about a second)."""
    import torch

    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    a = torch.randn(1024, 1024, device=device, dtype=torch_dtype)
    x = torch.empty(16 * 2**20, device=device, dtype=torch.float32)

    def timed(fn, repeats: int) -> float:
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) / repeats

    mm = timed(lambda: a @ a, 5)
    copy = timed(lambda: x.clone(), 5)
    return DeviceSpeed(tflops=2 * 1024**3 / mm / 1e12, bandwidth_gbs=2 * x.numel() * 4 / copy / 1e9,
                       source=f"measured on this machine ({device}, {dtype})")


def known_speed(device_name: str) -> DeviceSpeed | None:
    name = device_name.lower()
    for key, (tflops, bw) in KNOWN_GPUS.items():
        if key in name:
            return DeviceSpeed(tflops, bw, f"table value for {key.upper()} (achieved, ~40% of peak)")
    return None


def step_seconds(shape, plan: StagePlan, speed: DeviceSpeed) -> dict[str, float]:
    """Seconds per optimiser step: training, and (RL with transformers generate) generation."""
    params = shape.params()
    flops_per_token = (6 if plan.lora_targets is None else 4) * params + (2 * params if plan.checkpointing else 0)
    tokens = plan.rows * plan.seq * plan.grad_accum
    out = {"tokens": float(tokens), "train_s": tokens * flops_per_token / (speed.tflops * 1e12)}
    if plan.stage == "rl" and plan.vllm is None:
        b = DTYPE_BYTES[plan.dtype]
        kv_per_token = 2 * shape.layers * shape.kv_heads * shape.head_dim * b * plan.generation_rows
        mean_cache = plan.prompt_tokens + plan.completion_tokens / 2
        read = params * b + kv_per_token * mean_cache
        compute = 2 * params * plan.generation_rows
        per_decode = max(read / (speed.bandwidth_gbs * 1e9), compute / (speed.tflops * 1e12))
        per_decode += DECODE_OVERHEAD_S_PER_LAYER * shape.layers
        prefill = 2 * params * plan.generation_rows * plan.prompt_tokens / (speed.tflops * 1e12)
        # one generation batch serves steps_per_generation optimiser steps
        steps_served = max(1, plan.generation_rows // max(plan.rows * plan.grad_accum, 1))
        out["generation_s"] = (plan.completion_tokens * per_decode + prefill) / steps_served
        out["generated"] = plan.generation_rows * plan.completion_tokens / steps_served
    out["step_s"] = out["train_s"] + out.get("generation_s", 0.0)
    return out
