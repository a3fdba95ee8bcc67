"""math_accuracy throughput through the worker pool training uses, 1 and 2 workers, this tree vs an older revision.

    python tests/bench/bench_reward_throughput.py                       # this tree only
    python tests/bench/bench_reward_throughput.py --before 5388943      # vs rlr before issue 14 (git rev)

Each measurement runs in a fresh process (`--child`) that imports rlr from the tree it measures (`--before` is
exported with `git archive` into a temp dir), so both definitions run in the same harness. Runs are interleaved
(before, after, before, ...) in `--rounds` rounds, so a load change from other jobs hits both alike; the table
gives the best and median items/s per setting, CPU ms per item (all processes: less sensitive to load than wall
time) and the 1-minute load average seen during the runs. The completions are bench_rewards.py's mix.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def child(tree: str, n: int, workers: int) -> dict:
    sys.path.insert(0, tree)  # before the editable install: measure the tree asked for (its workers: PYTHONPATH)
    import rlr
    from rlr.rewards.math_pool import MathVerifyPool

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_rewards import _cpu_s, make_completions

    assert Path(rlr.__file__).resolve().is_relative_to(Path(tree).resolve()), rlr.__file__
    pairs = make_completions(n)
    pool = MathVerifyPool(workers=workers, timeout_s=5.0)
    pool.score(pairs[:workers])  # start the workers (imports of math-verify and sympy) outside the timing
    pids = [worker.proc.pid for worker in pool._workers]
    load = os.getloadavg()[0]
    cpu = time.process_time() + sum(_cpu_s(pid) for pid in pids)
    start = time.perf_counter()
    scores = [score for score, _ in pool.score(pairs)]
    wall = time.perf_counter() - start
    cpu = time.process_time() + sum(_cpu_s(pid) for pid in pids) - cpu
    pool.close()
    return {"rate": n / wall, "cpu_ms": cpu * 1000 / n, "load": max(load, os.getloadavg()[0]),
            "correct": sum(scores)}


def export_tree(rev: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "rlr"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def measure(tree: Path, n: int, workers: int) -> dict:
    # stderr passes through (a failing child says why); cwd = tree, since the `-m` workers import from the cwd
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(tree), "--n", str(n),
                          "--workers", str(workers)], check=True, stdout=subprocess.PIPE, text=True, cwd=tree,
                         env={**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=4000, help="completions per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", help="git revision to compare against (e.g. the commit before issue 14)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.n, args.workers)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"after": ROOT}
        if args.before:
            trees = {f"before ({args.before})": export_tree(args.before, Path(tmp)), **trees}
        runs: dict[tuple[str, int], list[dict]] = {}
        for _ in range(args.rounds):
            for workers in (1, 2):
                for label, tree in trees.items():
                    runs.setdefault((label, workers), []).append(measure(tree, args.n, workers))
    loads = [r["load"] for rs in runs.values() for r in rs]
    print(f"| math_accuracy pool, 5 s timeout ({args.n} completions x {args.rounds} rounds, {os.cpu_count()} CPUs, "
          f"load {min(loads):.1f}-{max(loads):.1f}) | best items/s | median items/s | CPU ms/item (median) |")
    print("|---|---:|---:|---:|")
    for (label, workers), rs in runs.items():
        rates = [r["rate"] for r in rs]
        print(f"| {label}, {workers} worker{'s' if workers > 1 else ''} | {max(rates):,.0f} | "
              f"{statistics.median(rates):,.0f} | {statistics.median(r['cpu_ms'] for r in rs):.2f} |")
    correct = {label: runs[(label, 1)][0]["correct"] for label in trees}
    print(f"\nScored correct out of {args.n}: " + ", ".join(f"{k} {v:g}" for k, v in correct.items()))


if __name__ == "__main__":
    main()
