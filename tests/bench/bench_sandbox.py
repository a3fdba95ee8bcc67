"""Sandbox throughput before and after the issue-15 hardening, same process, same machine, alternating.

"before" is the sandbox and `code_tests` of a git ref (default `main`), loaded from `git show` into a private
module; "after" is this checkout. Rows: plain `run_code` runs/s (1 and 2 workers) and `code_tests` verdicts/s
(one completion with 3 asserts each; after = two sandboxes per verdict: the code and its judge).

    python tests/bench/bench_sandbox.py --n 200 --ref main
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rlr.rewards.code import CodeTests  # noqa: E402
from rlr.sandbox import run_many  # noqa: E402


def baseline(ref: str) -> tuple[types.ModuleType, type]:
    """The ref's runner and CodeTests, as modules that import each other instead of this checkout."""
    def show(path: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:{path}"], check=True, capture_output=True,
                              text=True).stdout

    launcher = types.ModuleType("baseline_launcher")
    exec(compile(show("rlr/sandbox/launcher.py"), "baseline_launcher", "exec"), launcher.__dict__)
    sys.modules["baseline_launcher"] = launcher
    runner = types.ModuleType("baseline_runner")
    runner_src = show("rlr/sandbox/runner.py").replace("from rlr.sandbox.launcher import",
                                                       "from baseline_launcher import")
    sys.modules["baseline_runner"] = runner
    exec(compile(runner_src, "baseline_runner", "exec"), runner.__dict__)
    code = types.ModuleType("baseline_code")
    code_src = show("rlr/rewards/code.py").replace("from rlr.sandbox import run_many",
                                                   "from baseline_runner import run_many")
    sys.modules["baseline_code"] = code
    exec(compile(code_src, "baseline_code", "exec"), code.__dict__)
    return runner, code.CodeTests


def rate(fn, n: int) -> float:  # noqa: ANN001
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--ref", default="main")
    args = parser.parse_args()
    old_runner, OldCodeTests = baseline(args.ref)
    completion = "```python\ndef f(x):\n    return 2 * x\n```"
    tests = ["assert f(1) == 2", "assert f(2) == 4", "assert f(3) == 6"]
    rows = []
    for workers in (1, 2):
        programs = ["print(sum(range(1000)))"] * args.n
        before = rate(lambda w=workers, p=programs: old_runner.run_many(p, workers=w), args.n)
        after = rate(lambda w=workers, p=programs: run_many(p, workers=w), args.n)
        rows.append((f"sandbox `run_code`, {workers} worker(s)", before, after))
    for workers in (1, 2):
        old, new = OldCodeTests(workers=workers), CodeTests(workers=workers)
        assert old([completion] * 4, tests=[tests] * 4) == new([completion] * 4, tests=[tests] * 4) == [1.0] * 4
        before = rate(lambda r=old: r([completion] * args.n, tests=[tests] * args.n), args.n)
        after = rate(lambda r=new: r([completion] * args.n, tests=[tests] * args.n), args.n)
        rows.append((f"`code_tests` verdicts, {workers} worker(s)", before, after))
    print(f"| benchmark (n={args.n}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}) | before /s | after /s "
          "| after/before |")
    print("|---|---:|---:|---:|")
    for name, before, after in rows:
        print(f"| {name} | {before:.0f} | {after:.0f} | {after / before:.2f}x |")


if __name__ == "__main__":
    main()
