"""The quickstart pipeline per seed and thread setting: wall time per stage against the 5-minute budget, and the
lift it shows (issue 13). `python tests/bench/bench_quickstart.py [SEED ...] [--threads 1,unset]`; the default is
one seed (42) with threads unset, so `make bench` stays short; the seed table in BENCHMARKS.md used 42 1 2 3 4 5.

The baseline is the budget itself (300 s on 2 cores), so the ratio column is wall / budget.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 300.0
REPO = Path(__file__).resolve().parents[2]


def run(seed: int, threads: str, workdir: Path) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("OMP_NUM_THREADS", None)
    if threads != "unset":
        env["OMP_NUM_THREADS"] = threads
    t0 = time.time()
    out = subprocess.run([sys.executable, "-m", "rlr", "quickstart", "--json", f"run.seed={seed}",
                          f"run.name=qs-{seed}-{threads}", f"run.output_dir={workdir}/runs",
                          f"model.name_or_path={workdir}/tiny-model"], capture_output=True, text=True, env=env,
                         cwd=REPO)
    wall = time.time() - t0
    if out.returncode != 0:
        return {"seed": seed, "threads": threads, "wall": wall, "error": out.stderr.strip().splitlines()[-1:]}
    s = json.loads(out.stdout)
    return {"seed": seed, "threads": threads, "wall": wall, "before": s["before_rl"], "after": s["after_rl"],
            "stages": s["stage_seconds"]}


def pct(h: dict) -> str:
    lo, hi = h["sampled_ci"]
    return f"{h['sampled']:.1%} [{lo:.1%}, {hi:.1%}]"


def main(argv: list[str]) -> int:
    threads = ["unset"]
    if "--threads" in argv:
        i = argv.index("--threads")
        threads = argv[i + 1].split(",")
        argv = argv[:i] + argv[i + 2:]
    seeds = [int(a) for a in argv] or [42]
    print("| seed | OMP_NUM_THREADS | sampled before RL | after RL | lift | wall (s) | wall / budget | sft / rl (s) |")
    print("|---|---|---|---|---|---|---|---|")
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for t in threads:
                r = run(seed, t, Path(tmp))
                if "error" in r:
                    failed += 1
                    print(f"| {seed} | {t} | failed: {r['error']} | | | {r['wall']:.0f} | | |")
                    continue
                lift = 100 * (r["after"]["sampled"] - r["before"]["sampled"])
                st = r["stages"]
                print(f"| {seed} | {t} | {pct(r['before'])} | {pct(r['after'])} | {lift:+.1f} | {r['wall']:.0f} | "
                      f"{r['wall'] / BUDGET_S:.2f} | {st.get('sft')} / {st.get('rl')} |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
