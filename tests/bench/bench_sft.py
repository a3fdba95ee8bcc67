"""`rlr sft` vs the equivalent plain TRL SFTTrainer script, side by side (target wall-time ratio <= 1.05).

Both train the offline tiny model from its random init on the same prepared rows (2-digit addition with traces,
conversational prompt/completion, loss on the completion only), with the same seed and SFT settings
(full-parameter, lr 2e-3 cosine, batch 64, max_length 64, logging every step, no intermediate checkpoint), and both
save the final model. Each timing covers model load, dataset preparation, training and save. Runs alternate
(plain, rlr, plain, rlr ...) so that drift of a shared machine hits both; the median is reported. The loss curves
must match as well: same data order and same updates, or the comparison would be of different work.

    python tests/bench/bench_sft.py [--steps 40] [--repeats 3] [--lora]
"""

from __future__ import annotations

import argparse
import contextlib
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

SFT = {"learning_rate": 2e-3, "per_device_train_batch_size": 64, "lr_scheduler_type": "cosine", "warmup_steps": 4,
       "max_length": 64, "save_steps": 10_000}
LORA = {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"}


def write_preset(root: Path, model: Path, steps: int, use_lora: bool) -> Path:
    data = {
        "run": {"name": "bench", "output_dir": str(root / "runs"), "seed": 0},
        "model": {"name_or_path": str(model)},
        "lora": LORA,
        "template": {"system": "none", "answer_format": "none"},
        "data": {"train": {"source": "task:arithmetic", "rows": 2000, "args": {"digits": 2}}},
        "sft": {"use_lora": use_lora, "trainer": {**SFT, "max_steps": steps}},
    }
    path = root / "bench.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class Clock:
    """Wall time and this process's CPU time (all threads). On a shared machine the wall clock mostly measures the
    neighbours; CPU time is what the code itself cost, so both are reported."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def run_stage(command: str, preset: Path) -> tuple[dict, Clock]:
    from rlr.checks import load_experiment
    from rlr.stage import COMMAND_CHECKS, StageOptions, stage_function

    loaded = load_experiment(preset, [], stages=COMMAND_CHECKS[command])
    with Clock() as clock:
        summary = stage_function(command)(loaded, StageOptions(overwrite=True))
    return summary, clock


def plain_trl(model_dir: Path, train_jsonl: Path, out: Path, steps: int, use_lora: bool) -> list[float]:
    """What a user would write with TRL alone: same model, rows, format and settings."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="right")
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    rows = [json.loads(line) for line in train_jsonl.read_text().splitlines()]
    pairs = [{"prompt": r["prompt"], "completion": [{"role": "assistant", "content": r["solution"]}]} for r in rows]
    dataset = Dataset.from_list(pairs)
    args = SFTConfig(output_dir=str(out), seed=0, max_steps=steps, use_cpu=True, bf16=False,
                     activation_checkpointing=False, report_to="none", logging_steps=1, save_total_limit=2,
                     completion_only_loss=True, **SFT)
    peft_config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear",
                             task_type="CAUSAL_LM") if use_lora else None
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config)
    with contextlib.redirect_stdout(sys.stderr):  # transformers' progress printer would break the markdown
        trainer.train()
    trainer.save_model(str(out / "model"))
    return [e["loss"] for e in trainer.state.log_history if "loss" in e]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lora", action="store_true", help="LoRA r16 instead of full-parameter training")
    opts = parser.parse_args()

    from rlr.models.tiny import build_tiny_model

    root = Path(tempfile.mkdtemp(prefix="bench-sft-"))
    model = build_tiny_model(root / "tiny", size="tiny", seed=0)
    preset = write_preset(root, model, opts.steps, opts.lora)
    run_stage("prepare-data", preset)
    train_jsonl = root / "runs/bench/data/train.jsonl"

    plain: list[Clock] = []
    rlr: list[Clock] = []
    for i in range(opts.repeats):
        with Clock() as clock:
            plain_losses = plain_trl(model, train_jsonl, root / f"plain{i}", opts.steps, opts.lora)
        plain.append(clock)
        summary, clock = run_stage("sft", preset)
        rlr.append(clock)
    rlr_losses = [json.loads(line)["loss"] for line in (root / "runs/bench/sft/metrics.jsonl").read_text().splitlines()
                  if '"loss"' in line]
    gap = max(abs(a - b) for a, b in zip(plain_losses, rlr_losses, strict=True))

    pw, rw = statistics.median(c.wall for c in plain), statistics.median(c.wall for c in rlr)
    pc, rc = statistics.median(c.cpu for c in plain), statistics.median(c.cpu for c in rlr)
    kind = "LoRA r16" if opts.lora else "full-parameter"
    print(f"tiny model (~1M params), 2-digit addition with traces (2000 rows), SFT {opts.steps} steps {kind}, "
          f"batch 64, max_length 64; median of {opts.repeats}, {os.cpu_count()} cores\n")
    print("| run | wall (s) | wall ratio | CPU (s) | CPU ratio |")
    print("|---|---|---|---|---|")
    print(f"| plain TRL SFTTrainer script | {pw:.2f} | 1.00 | {pc:.2f} | 1.00 |")
    print(f"| `rlr sft` (stage call) | {rw:.2f} | {rw / pw:.3f} | {rc:.2f} | {rc / pc:.3f} |")
    print(f"\nall runs, wall/CPU (s): plain {[(round(c.wall, 1), round(c.cpu, 1)) for c in plain]}, "
          f"rlr {[(round(c.wall, 1), round(c.cpu, 1)) for c in rlr]}; paired wall ratios "
          f"{[round(r.wall / p.wall, 3) for p, r in zip(plain, rlr, strict=True)]}")
    print(f"loss {rlr_losses[0]:.3f} -> {rlr_losses[-1]:.3f} (rlr); largest per-step gap to plain TRL: {gap:.2e}; "
          f"rlr train time {summary['train_time_s']} s, {summary['tokens_per_s']} tokens/s")


if __name__ == "__main__":
    main()
