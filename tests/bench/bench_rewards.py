"""Reward throughput: math_accuracy serial vs the worker pool, and sandbox executions per second.

Run with `make bench` (or `python tests/bench/bench_rewards.py [--n 10000]`); prints a markdown table.
"Serial" is math-verify called in this process with no timeout (the unsafe baseline); "pool" is what
training uses: worker processes with a hard per-item timeout.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # runs from a checkout without installing rlr

from rlr.rewards.math_check import verify_math  # noqa: E402
from rlr.rewards.math_pool import MathVerifyPool  # noqa: E402
from rlr.sandbox import run_many  # noqa: E402


def make_completions(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Varied answers (so math-verify's parse cache does not flatter the numbers), ~1/3 wrong, some unanswered."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        a, b = rng.randint(1, 999), rng.randint(2, 99)
        kind = i % 6
        if kind == 0:
            pairs.append((f"<think>{a}+{b}</think> \\boxed{{{a + b}}}", str(a + b)))
        elif kind == 1:
            pairs.append((f"so the answer is \\boxed{{\\frac{{{a}}}{{{b}}}}}", f"{a}/{b}"))
        elif kind == 2:
            pairs.append((f"<think>...</think> \\boxed{{{a / b:.6f}}}", f"\\frac{{{a}}}{{{b}}}"))
        elif kind == 3:
            pairs.append((f"<think>...</think> \\boxed{{x = {a}}}", str(a + 1)))
        elif kind == 4:
            pairs.append((f"The answer is {a},{b:03d}", f"{a}{b:03d}"))
        else:
            pairs.append((f"<think>I think it is {a} or maybe {b}", str(a)))
    return pairs


def bench_math(n: int, workers: int) -> list[tuple[str, float]]:
    pairs = make_completions(n)
    rows = []
    verify_math(*pairs[0])  # import math-verify and sympy outside the timing
    start = time.perf_counter()
    serial = [verify_math(c, a)[0] for c, a in pairs]
    rows.append(("math_accuracy serial, in-process (no timeout)", n / (time.perf_counter() - start)))
    for w in sorted({1, workers}):
        pool = MathVerifyPool(workers=w, timeout_s=5.0)
        pool.score(pairs[:w])  # start the workers outside the timing
        start = time.perf_counter()
        pooled = [score for score, _ in pool.score(pairs)]
        rows.append((f"math_accuracy pool, {w} worker(s), 5 s timeout", n / (time.perf_counter() - start)))
        pool.close()
        assert pooled == serial, "pool and serial disagree"
    return rows


def bench_sandbox(n: int, workers: int) -> list[tuple[str, float]]:
    rows = []
    for w in sorted({1, workers}):
        start = time.perf_counter()
        results = run_many(["print(sum(range(1000)))"] * n, workers=w)
        assert all(r.ok for r in results)
        rows.append((f"sandbox run_code, {w} worker(s)", n / (time.perf_counter() - start)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000, help="completions for math_accuracy")
    parser.add_argument("--sandbox-n", type=int, default=200, help="sandbox executions")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    rows = bench_math(args.n, args.workers) + bench_sandbox(args.sandbox_n, args.workers)
    base = rows[0][1]
    print(f"| benchmark ({args.n} completions, {os.cpu_count()} CPUs) | items/s | vs serial |")
    print("|---|---:|---:|")
    for name, rate in rows:
        ratio = f"{rate / base:.2f}x" if name.startswith("math") else ""
        print(f"| {name} | {rate:,.0f} | {ratio} |")


if __name__ == "__main__":
    main()
