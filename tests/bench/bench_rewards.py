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


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (workers are not waited for, so rusage misses them)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_math(n: int, workers: int) -> list[tuple[str, float, float | None]]:
    """(name, items/s, CPU ms per item over all processes): CPU time shows the pool's overhead even when
    other jobs share the machine and wall-clock throughput is noisy."""
    pairs = make_completions(n)
    rows: list[tuple[str, float, float | None]] = []
    verify_math(*pairs[0])  # import math-verify and sympy outside the timing
    start, cpu = time.perf_counter(), time.process_time()
    serial = [verify_math(c, a)[0] for c, a in pairs]
    rate, cpu_ms = n / (time.perf_counter() - start), (time.process_time() - cpu) * 1000 / n
    rows.append(("math_accuracy serial, in-process (no timeout)", rate, cpu_ms))
    for w in sorted({1, workers}):
        pool = MathVerifyPool(workers=w, timeout_s=5.0)
        pool.score(pairs[:w])  # start the workers outside the timing
        pids = [worker.proc.pid for worker in pool._workers]
        before = time.process_time() + sum(_cpu_s(pid) for pid in pids)
        start = time.perf_counter()
        pooled = [score for score, _ in pool.score(pairs)]
        rate = n / (time.perf_counter() - start)
        cpu_ms = (time.process_time() + sum(_cpu_s(pid) for pid in pids) - before) * 1000 / n
        rows.append((f"math_accuracy pool, {w} worker(s), 5 s timeout", rate, cpu_ms))
        pool.close()
        assert pooled == serial, "pool and serial disagree"
    return rows


def bench_sandbox(n: int, workers: int) -> list[tuple[str, float, float | None]]:
    rows: list[tuple[str, float, float | None]] = []
    for w in sorted({1, workers}):
        start = time.perf_counter()
        results = run_many(["print(sum(range(1000)))"] * n, workers=w)
        assert all(r.ok for r in results)
        rows.append((f"sandbox run_code, {w} worker(s)", n / (time.perf_counter() - start), None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000, help="completions for math_accuracy")
    parser.add_argument("--sandbox-n", type=int, default=200, help="sandbox executions")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    rows = bench_math(args.n, args.workers) + bench_sandbox(args.sandbox_n, args.workers)
    base = rows[0][1]
    load = os.getloadavg()[0]
    title = f"benchmark ({args.n} completions, {os.cpu_count()} CPUs, load {load:.1f})"
    print(f"| {title} | items/s | vs serial | CPU ms/item |")
    print("|---|---:|---:|---:|")
    for name, rate, cpu_ms in rows:
        ratio = f"{rate / base:.2f}x" if name.startswith("math") else ""
        cpu = f"{cpu_ms:.2f}" if cpu_ms is not None else ""
        print(f"| {name} | {rate:,.0f} | {ratio} | {cpu} |")


if __name__ == "__main__":
    main()
