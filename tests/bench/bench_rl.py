"""`rlr train-rl` vs the equivalent plain TRL GRPOTrainer script, side by side (target wall-time ratio <= 1.05),
plus what DAPO dynamic sampling costs. Prints markdown tables.

Both start from the same tiny model after a 300-step full-parameter SFT (inside the band where RL has signal: GRPO
was measured to help from a moderate pass rate, ~30-90% sampled, and to collapse from under ~5%), on the same
prepared rows, reward (rlr's `accuracy`), seed and GRPO settings (LoRA r16, lr 5e-4
constant, 8 prompts x 4 generations, 32 new tokens). Runs alternate (plain then rlr, then rlr then plain ...) so
that drift of the machine hits both; the median is reported.

    python tests/bench/bench_rl.py [--steps 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # runs from a checkout without installing rlr
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import yaml  # noqa: E402

GRPO = {"per_device_train_batch_size": 32, "num_generations": 4, "max_completion_length": 32, "learning_rate": 5e-4,
        "lr_scheduler_type": "constant", "beta": 0.0, "loss_type": "grpo", "scale_rewards": "group", "epsilon": 0.2,
        "temperature": 1.0, "save_steps": 10_000}
SFT = {"max_steps": 300, "learning_rate": 2e-3, "per_device_train_batch_size": 64, "lr_scheduler_type": "cosine",
       "warmup_steps": 12, "save_steps": 10_000}
LORA = {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"}


def write_preset(root: Path, model: Path, name: str, steps: int, **rl: object) -> Path:
    data = {
        "run": {"name": name, "output_dir": str(root / "runs"), "seed": 0},
        "model": {"name_or_path": str(model)},
        "lora": LORA,
        "template": {"system": "none", "answer_format": "none"},
        "data": {"train": {"source": "task:arithmetic", "rows": 4000, "args": {"digits": 2}}},
        "rewards": [{"name": "accuracy"}],
        "sft": {"use_lora": False, "trainer": SFT},
        "rl": {"algorithm": "grpo", "init_from": "base", "sample_log_every": 0,
               "trainer": {**GRPO, "max_steps": steps}, **rl},
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_stage(command: str, preset: Path, overrides: list[str] | None = None) -> tuple[dict, float]:
    from rlr.checks import load_experiment
    from rlr.stage import COMMAND_CHECKS, StageOptions, stage_function

    loaded = load_experiment(preset, overrides or [], stages=COMMAND_CHECKS[command])
    t0 = time.perf_counter()
    summary = stage_function(command)(loaded, StageOptions(overwrite=True))
    return summary, time.perf_counter() - t0


def plain_trl(model_dir: Path, train_jsonl: Path, out: Path, steps: int) -> float:
    """What a user would write with TRL alone: same model, rows, reward, LoRA and GRPO settings."""
    t0 = time.perf_counter()
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from rlr.rewards.accuracy import TaskScore

    tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    rows = [json.loads(line) for line in train_jsonl.read_text().splitlines()]
    reward = TaskScore()
    reward.__name__ = "accuracy"
    args = GRPOConfig(output_dir=str(out), seed=0, max_steps=steps, use_cpu=True, bf16=False,
                      activation_checkpointing=False, report_to="none", logging_steps=1, save_total_limit=2, **GRPO)
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=Dataset.from_list(rows),
                          processing_class=tokenizer,
                          peft_config=LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear",
                                                 task_type="CAUSAL_LM"))
    trainer.train()
    trainer.save_model(str(out / "model"))
    return time.perf_counter() - t0


def ds_cost(metrics_path: Path, groups_per_batch: int) -> dict[str, float]:
    steps = [json.loads(line) for line in metrics_path.read_text().splitlines()]
    steps = [m for m in steps if "dynamic_sampling/extra_rounds" in m]
    g = GRPO["num_generations"]
    generated = sum(groups_per_batch + m["dynamic_sampling/extra_generations"] / g for m in steps)
    kept = sum(groups_per_batch - m["dynamic_sampling/filled_groups"] for m in steps)
    return {"zero_before": statistics.mean(m["dynamic_sampling/zero_std_frac_before"] for m in steps),
            "rounds": statistics.mean(m["dynamic_sampling/extra_rounds"] for m in steps),
            "filled": sum(m["dynamic_sampling/filled_groups"] for m in steps),
            "generated_per_kept": generated / max(kept, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    opts = parser.parse_args()

    from rlr.models.tiny import build_tiny_model

    root = Path(tempfile.mkdtemp(prefix="bench-rl-"))
    model = build_tiny_model(root / "tiny", size="tiny", seed=0)
    base = write_preset(root, model, "base", opts.steps)
    run_stage("prepare-data", base)
    _, sft_s = run_stage("sft", base)
    sft_model = root / "runs/base/sft/model"
    train_jsonl = root / "runs/base/data/train.jsonl"
    # every RL run below starts from the SFT weights, through rl.init_from = that directory
    preset = write_preset(root, model, "base", opts.steps, init_from=str(sft_model))

    plain, rlr = [], []
    summary: dict = {}
    for i in range(opts.repeats):
        for which in ("plain", "rlr") if i % 2 == 0 else ("rlr", "plain"):  # alternate which goes first
            if which == "plain":
                with contextlib.redirect_stdout(io.StringIO()):  # TRL's log printer: paid, not shown
                    plain.append(plain_trl(sft_model, train_jsonl, root / f"plain{i}", opts.steps))
            else:
                summary, seconds = run_stage("train-rl", preset)
                rlr.append(seconds)
    ds_preset = write_preset(root, model, "base", opts.steps, init_from=str(sft_model),
                             dynamic_sampling={"enabled": True, "max_rounds": 3})
    with contextlib.redirect_stdout(io.StringIO()):  # its own plain neighbour: the machine's load drifts
        ds_plain = plain_trl(sft_model, train_jsonl, root / "plain-ds", opts.steps)
    ds_summary, ds_s = run_stage("train-rl", ds_preset)
    cost = ds_cost(root / "runs/base/rl/metrics.jsonl", GRPO["per_device_train_batch_size"] // GRPO["num_generations"])

    p, r = statistics.median(plain), statistics.median(rlr)
    paired = statistics.median(b / a for a, b in zip(plain, rlr, strict=True))  # each repeat's runs are neighbours
    print(f"tiny model (~1M params), 2-digit addition, SFT 300 steps full-param ({sft_s:.0f} s), then GRPO "
          f"{opts.steps} steps: LoRA r16, 8 prompts x 4 generations, 32 tokens; median of {opts.repeats}\n")
    print("| run | wall (s, median) | per step (s) | ratio to plain TRL (median of paired runs) |")
    print("|---|---|---|---|")
    print(f"| plain TRL GRPOTrainer script | {p:.2f} | {p / opts.steps:.3f} | 1.00 |")
    print(f"| `rlr train-rl` (stage call) | {r:.2f} | {r / opts.steps:.3f} | {paired:.3f} |")
    print(f"| `rlr train-rl` + dynamic sampling (max_rounds 3) | {ds_s:.2f} | {ds_s / opts.steps:.3f} | "
          f"{ds_s / ds_plain:.3f} (vs its neighbour, {ds_plain:.2f} s) |")
    print(f"\nall runs (s): plain {[round(x, 2) for x in plain]}, rlr {[round(x, 2) for x in rlr]}")
    print(f"rlr reward first/last: {summary['first_reward']} -> {summary['last_reward']}; with dynamic sampling: "
          f"{ds_summary['first_reward']} -> {ds_summary['last_reward']}\n")
    print("| dynamic sampling | value |")
    print("|---|---|")
    print(f"| zero-variance groups before filtering (mean) | {cost['zero_before']:.2f} |")
    print(f"| extra generation rounds per batch (mean) | {cost['rounds']:.2f} |")
    print(f"| groups generated per informative group trained on | {cost['generated_per_kept']:.2f} |")
    print(f"| groups filled with zero-variance ones (max_rounds hit) | {cost['filled']:.0f} |")


if __name__ == "__main__":
    main()
