"""`rlr estimate` against the measured peak memory of real `rlr sft` / `rlr train-rl` runs on CPU (target: +-25%).

What is compared, and why it is comparable. On a GPU the estimate is the training's own allocations, what
`torch.cuda.max_memory_allocated` reports. A CPU has no such counter (torch's CPU allocator is plain malloc), so
the measure is the process's peak resident set (`ru_maxrss` of the child, read with `os.wait4`) *minus the
fixed cost of a training process*: the same command on the ~50k-parameter micro model with a batch of one
(Python, torch, transformers, TRL, PEFT, datasets, the tokenizer, the Trainer and its dataloader: ~0.6-0.9 GB
that does not depend on the model). What is left is what grows with the model and the batch, which is what the
estimate models (weights, adapter, optimizer state, gradients, activations, the LM-head tile, the KV cache).
What differs from a GPU and is inside the measured number: glibc's heap keeps freed small blocks (RSS >= live
memory), and safetensors' mmap'd weight pages count once they are read. Each run is a few steps (the peak is
reached from the second step on, when the optimizer state exists) with OMP_NUM_THREADS=1.

    python tests/bench/bench_memory.py [--sizes tiny,20m,100m] [--stages sft,rl] [--dir /tmp/rlr-bench-memory]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
GiB = 2**30

# per model size: (SFT rows per batch, RL rows per batch, RL completion tokens); chosen so that the part that grows
# with the model is well above the measurement's noise (tens of MB) and each run stays well under a minute
WORKLOADS = {"tiny": (128, 64, 64), "20m": (32, 32, 48), "100m": (8, 16, 32)}
# the same measurement for the settings the main table does not cover
# (activation_checkpointing is the name TRL 1.16 reads; rlr's CPU default sets it false, which wins over the old one)
VARIANTS = [("20m", "sft", True, None), ("tiny", "rl", False, None),
            ("20m", "sft", False, {"activation_checkpointing": True}),
            ("20m", "rl", True, {"activation_checkpointing": True}),
            ("20m", "sft", False, {"gradient_accumulation_steps": 2})]
LORA = {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"}


def env() -> dict[str, str]:
    # MALLOC_MMAP_THRESHOLD_ pinned: every block over 128 KiB (every tensor that matters) is its own mmap, returned
    # to the OS when freed, so RSS follows live memory as a GPU's allocated counter does. Left dynamic (glibc's
    # default), freed tensors up to 32 MB stay in the heap and RSS keeps the high-water mark of a fragmented heap.
    # That costs time (every big tensor is fresh, zeroed pages): step times here are not training speed; measure
    # those with RLR_BENCH_MMAP_THRESHOLD=default (glibc's own behaviour).
    threshold = os.environ.get("RLR_BENCH_MMAP_THRESHOLD", "131072")
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
            **({} if threshold == "default" else {"MALLOC_MMAP_THRESHOLD_": threshold})}


def peak_rss(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Peak RSS of one child, measured in a fresh helper process so RUSAGE_CHILDREN covers that child only."""
    code = ("import json,os,resource,subprocess,sys;"
            "p=subprocess.run(sys.argv[1:],capture_output=True,text=True);"
            "print(json.dumps({'rc':p.returncode,'kb':resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,"
            "'out':p.stdout,'err':p.stderr[-4000:]}))")
    helper = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "rlr", *args], cwd=cwd, env=env(),
                            capture_output=True, text=True, check=True)
    result = json.loads(helper.stdout)
    if result["rc"] != 0:
        raise RuntimeError(f"rlr {' '.join(args)} failed ({result['rc']}): {result['err']}")
    return result["kb"] * 1024, result["out"], result["err"]


def model_dir(root: Path, size: str) -> Path:
    path = root / "models" / size
    if not (path / "config.json").is_file():
        subprocess.run([sys.executable, "-m", "rlr", "tiny-model", str(path), "--size", size], cwd=root, env=env(),
                       check=True, capture_output=True)
    return path


def preset(root: Path, model: Path, name: str, stage: str, rows: int, completion: int, steps: int = 3,
           use_lora: bool | None = None, trainer: dict[str, Any] | None = None) -> Path:
    data: dict[str, Any] = {
        "run": {"name": name, "output_dir": str(root / "runs"), "seed": 0},
        "model": {"name_or_path": str(model)},
        "lora": LORA,
        "template": {"system": "none", "answer_format": "none"},
        # 4-digit addition with its column trace: every row has the same length (~60 tokens of prompt + solution)
        "data": {"train": {"source": "task:arithmetic", "rows": max(256, rows * steps), "args": {"digits": 4}}},
        "rewards": [{"name": "accuracy"}],
        "sft": {"use_lora": bool(use_lora), "trainer": {"max_steps": steps, "per_device_train_batch_size": rows,
                                                        "learning_rate": 1e-4, "save_steps": 10_000,
                                                        **(trainer or {})}},
        "rl": {"algorithm": "grpo", "init_from": "base", "sample_log_every": 0,
               "use_lora": True if use_lora is None else use_lora,
               "trainer": {"max_steps": steps, "per_device_train_batch_size": rows, "num_generations": 8,
                           "max_completion_length": completion, "learning_rate": 1e-5, "temperature": 1.0,
                           "beta": 0.0, "save_steps": 10_000, **(trainer or {})}},
        "pipeline": {"stages": [stage]},
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def estimate(root: Path, preset_path: Path, stage: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "rlr", "estimate", str(preset_path), "--device", "cpu", "--json"],
                         cwd=root, env=env(), capture_output=True, text=True, check=True).stdout
    return json.loads(out)["stages"][stage]


def measure(root: Path, size: str, stage: str, use_lora: bool | None = None, steps: int = 3,
            trainer: dict[str, Any] | None = None) -> dict[str, Any]:
    """One comparison: the estimate, the measured growth over the micro-model baseline, their ratio."""
    command = "sft" if stage == "sft" else "train-rl"
    sft_rows, rl_rows, completion = WORKLOADS[size]
    rows = sft_rows if stage == "sft" else rl_rows
    tag = f"{size}-{stage}" + ("" if use_lora is None else ("-lora" if use_lora else "-full")) + "".join(
        f"-{k}{v}" for k, v in (trainer or {}).items())
    runs = {}
    for label, model, r, c in (("base", model_dir(root, "micro"), 8, 8), ("run", model_dir(root, size), rows,
                                                                            completion)):
        path = preset(root, model, f"{tag}-{label}", stage, r, c, steps=steps, use_lora=use_lora, trainer=trainer)
        subprocess.run([sys.executable, "-m", "rlr", "prepare-data", str(path), "--overwrite"], cwd=root, env=env(),
                       check=True, capture_output=True)
        rss, out, _ = peak_rss([command, str(path), "--overwrite", "--json"], root)
        runs[label] = {"rss": rss, "summary": json.loads(out), "preset": path}
    est = estimate(root, runs["run"]["preset"], stage)
    base_est = estimate(root, runs["base"]["preset"], stage)
    grown = runs["run"]["rss"] - runs["base"]["rss"]
    predicted = (est["peak_gib"] - base_est["peak_gib"]) * GiB
    metrics = runs["run"]["preset"].parent / "runs" / f"{tag}-run" / stage / "metrics.jsonl"
    times = sorted(m["step_time_s"] for m in map(json.loads, metrics.read_text().splitlines())
                   if "loss" in m and m.get("step", 0) > 1 and "step_time_s" in m)
    return {"size": size, "stage": stage, "lora": stage == "rl" if use_lora is None else use_lora,
            "trainer": trainer or {}, "step_s": times[len(times) // 2] if times else None,
            "estimated_step_s": est["step_s"],
            "rows": rows, "completion": completion if stage == "rl" else None,
            "baseline_rss_gib": runs["base"]["rss"] / GiB, "rss_gib": runs["run"]["rss"] / GiB,
            "measured_gib": grown / GiB, "estimated_gib": predicted / GiB, "ratio": predicted / grown,
            "estimate": est, "wall_s": runs["run"]["summary"].get("wall_s"),
            "steps": runs["run"]["summary"].get("steps")}


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| model | stage | batch | baseline RSS | peak RSS | measured growth | estimate | estimate / measured "
             "| s/step measured / estimated |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        batch = f"{r['rows']}" + (f" x (prompt + {r['completion']})" if r["completion"] else " rows")
        kind = ("LoRA" if r["lora"] else "full") + "".join(f", {k}={v}" for k, v in r.get("trainer", {}).items())
        lines.append(f"| {r['size']} | {r['stage']} ({kind}) | {batch} | {r['baseline_rss_gib']:.3f} GiB | "
                     f"{r['rss_gib']:.3f} GiB | {r['measured_gib']:.3f} GiB | {r['estimated_gib']:.3f} GiB | "
                     f"{r['ratio']:.2f} | {r.get('step_s') or float('nan'):.2f} / {r['estimated_step_s']:.2f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="tiny,20m,100m")
    parser.add_argument("--stages", default="sft,rl")
    parser.add_argument("--dir", default="/tmp/rlr-bench-memory")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--variants", action="store_true", help="also LoRA SFT, full-parameter RL, gradient "
                        "checkpointing and gradient accumulation")
    args = parser.parse_args()
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    results = []
    for size in args.sizes.split(","):
        for stage in args.stages.split(","):
            results.append(measure(root, size, stage))
            print(json.dumps({k: v for k, v in results[-1].items() if k != "estimate"}), file=sys.stderr, flush=True)
    for size, stage, lora, trainer in VARIANTS if args.variants else ():
        results.append(measure(root, size, stage, use_lora=lora, trainer=trainer))
        print(json.dumps({k: v for k, v in results[-1].items() if k != "estimate"}), file=sys.stderr, flush=True)
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0 if all(0.75 <= r["ratio"] <= 1.25 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
