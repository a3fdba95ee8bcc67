"""`rlr --help` wall time vs `trl --help` on the same machine, side by side (target ratio <= 1.0)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def wall(cmd: list[str], repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    wall([str(BIN / "rlr"), "--help"], 1)  # warm the file cache for both
    wall([str(BIN / "trl"), "--help"], 1)
    rows = []
    for rlr_cmd in (["--help"], ["train-rl", "--help"], ["evaluate", "--help"]):
        r = wall([str(BIN / "rlr"), *rlr_cmd])
        t = wall([str(BIN / "trl"), "--help"])
        rows.append((f"rlr {' '.join(rlr_cmd)}", r, t))
    print("| command | rlr (s, median of 7) | trl --help (s) | ratio |")
    print("|---|---|---|---|")
    for name, r, t in rows:
        print(f"| `{name}` | {r:.3f} | {t:.3f} | {r / t:.2f} |")


if __name__ == "__main__":
    main()
