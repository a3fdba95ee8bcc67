"""Paired bootstrap of an RL lift: `python tests/bench/paired_lift.py RUN_DIR...`.

For each run directory, reads `eval/sft/samples.jsonl` and `eval/rl/samples.jsonl` (the same held-out problems),
takes each problem's mean correctness before and after RL, and resamples the per-problem differences (2,000 times,
seed 0) for a 95% interval of the lift. Sampled and greedy rows separately. BENCHMARKS.md quotes its output.
"""

from __future__ import annotations

import json
import random
import sys
from collections import defaultdict
from pathlib import Path


def per_problem(path: Path, mode: str) -> dict[int, float]:
    flags: dict[int, list[float]] = defaultdict(list)
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            if row["mode"] == mode:
                flags[row["problem"]].append(float(row["correct"]))
    return {p: sum(v) / len(v) for p, v in flags.items()}


def paired_lift(run_dir: Path, mode: str, resamples: int = 2000) -> tuple[float, float, float, float, float]:
    """(before, after, lift, low, high) in points."""
    before = per_problem(run_dir / "eval/sft/samples.jsonl", mode)
    after = per_problem(run_dir / "eval/rl/samples.jsonl", mode)
    diffs = [after[p] - before[p] for p in sorted(before)]
    rng = random.Random(0)
    means = sorted(sum(rng.choice(diffs) for _ in diffs) / len(diffs) for _ in range(resamples))
    lo, hi = means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]
    return (100 * sum(before.values()) / len(before), 100 * sum(after.values()) / len(after),
            100 * sum(diffs) / len(diffs), 100 * lo, 100 * hi)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        cells = []
        for mode in ("sample", "greedy"):
            b, a, d, lo, hi = paired_lift(Path(arg), mode)
            cells.append(f"{mode}: {b:.1f} -> {a:.1f}, lift {d:+.1f} [{lo:+.1f}, {hi:+.1f}]")
        print(arg, " | ".join(cells))
