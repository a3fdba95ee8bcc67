"""`make bench`: run every benchmark script in tests/bench/ and print their markdown tables.

Each script compares against its baseline side by side in the same process, so the ratios are meaningful on
any machine; copy the tables into BENCHMARKS.md with the machine they were taken on.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main() -> int:
    print(f"# rlr benchmarks on {platform.node()} ({platform.processor() or platform.machine()}, "
          f"{__import__('os').cpu_count()} cores, python {platform.python_version()})\n")
    failed = 0
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"## {script.stem}\n", flush=True)
        code = subprocess.call([sys.executable, str(script)])
        failed += code != 0
        print(flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
