"""prepare-data throughput: 100k procedural rows and 100k file rows, end to end, plus where the time goes.

Run with `make bench` (or `python tests/bench/bench_data.py [--rows 100000]`); prints markdown tables.
The last table answers "should the file path use datasets.map with num_proc?": the same column mapping + answer
extraction done by rlr's plain loop and by `Dataset.map` with 1 and 2 processes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # runs from a checkout without installing rlr

import yaml  # noqa: E402

from rlr.checks import load_experiment  # noqa: E402
from rlr.config.schema import SourceSpec, TemplateSection  # noqa: E402
from rlr.data import filters  # noqa: E402
from rlr.data.prepare import output_row, run_prepare, write_jsonl_files  # noqa: E402
from rlr.data.sources import extract_answer_field, map_records, read_file  # noqa: E402
from rlr.data.templates import render_prompt  # noqa: E402
from rlr.stage import StageOptions  # noqa: E402

WORDS = ("apples pears clips friends sold bought gave kept shared boxes crates miles hours dollars cents books pages "
         "cookies jars marbles bags tickets trains buses cars seats rows plants seeds flowers eggs hens cows sheep "
         "ducks coins stamps cards games points laps pools shelves cups plates spoons forks").split()
NAMES = "Natalia Weng Betty Julie James Mark Albert Ken Alexis Tina Randy Joy Mary Carla Greg".split()


def write_gsm8k_file(path: Path, n: int, seed: int = 0) -> Path:
    """GSM8K-shaped rows with varied wording, so 13-gram decontamination sees realistic (rare) overlaps."""
    import random

    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(n):
            a, b = rng.randint(2, 999), rng.randint(2, 99)
            w = rng.sample(WORDS, 6)
            q = (f"{rng.choice(NAMES)} has {a} {w[0]} and {b} {w[1]}. Each of the {w[2]} holds {b} {w[3]}, and "
                 f"{rng.choice(NAMES)} gives away {a // 2} {w[4]} for {w[5]}. How many {w[0]} are left in total?")
            f.write(json.dumps({"question": q, "answer": f"{a} - {a // 2} = {a - a // 2}\n#### {a * b:,}"}) + "\n")
    return path


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def end_to_end(root: Path, name: str, data: dict) -> tuple[int, float]:
    preset = root / f"{name}.yaml"
    preset.write_text(yaml.safe_dump({
        "run": {"name": name, "output_dir": str(root / "runs"), "seed": 0},
        "model": {"name_or_path": "some/model"},
        "template": {"system": "r1_think", "answer_format": "boxed"},
        "data": data,
    }))
    loaded = load_experiment(preset, stages=("data",))
    summary, seconds = timed(run_prepare, loaded, StageOptions())
    return summary["train_rows"] + summary["eval_rows"], seconds


def phases(path: Path, eval_path: Path) -> list[tuple[str, int, float]]:
    spec = SourceSpec(source=str(path))
    (records, columns), t_read = timed(read_file, path)
    got, t_map = timed(map_records, records, columns, spec, where=str(path), key="data.train[0]")
    rows = got.rows
    (rows, _), t_dedup = timed(filters.dedup, rows, "normalized")
    eval_q = [r["question"] for r in read_file(eval_path)[0]]
    (rows, _), t_decon = timed(filters.decontaminate, rows, eval_q, 13)
    template = TemplateSection()

    def render() -> list[dict]:
        return [output_row({**r, "prompt": render_prompt(r["question"], template)}) for r in rows]

    out, t_render = timed(render)
    with tempfile.TemporaryDirectory() as d:
        _, t_write = timed(write_jsonl_files, Path(d), {"train.jsonl": out})
    n = len(records)
    return [("read jsonl", n, t_read), ("map columns + extract answer", n, t_map), ("dedup (normalized)", n, t_dedup),
            ("decontaminate (13-gram vs 1k eval)", n, t_decon), ("render prompt + row", n, t_render),
            ("write + fsync + sha256", n, t_write)]


def _map_fn(record: dict) -> dict:
    answer, solution, _ = extract_answer_field(record["answer"], "auto")
    return {"answer_out": answer, "solution": solution}


def mapping_strategies(path: Path) -> list[tuple[str, int, float]]:
    from datasets import Dataset, disable_progress_bars

    disable_progress_bars()
    records, columns = read_file(path)
    spec = SourceSpec(source=str(path))
    _, t_loop = timed(map_records, records, columns, spec, where=str(path), key="k")
    ds, t_build = timed(Dataset.from_list, records)
    out = [("plain loop (rlr)", len(records), t_loop)]
    for procs in (1, 2):
        _, t = timed(ds.map, _map_fn, num_proc=procs if procs > 1 else None, load_from_cache_file=False)
        out.append((f"Dataset.from_list + map(num_proc={procs})", len(records), t_build + t))
    return out


def table(title: str, rows: list[tuple[str, int, float]]) -> None:
    print(f"| {title} | rows | seconds | rows/s |\n|---|---:|---:|---:|")
    for name, n, s in rows:
        print(f"| {name} | {n:,} | {s:.2f} | {n / s:,.0f} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        big = write_gsm8k_file(root / "big.jsonl", args.rows)
        small = write_gsm8k_file(root / "eval.jsonl", 1000, seed=1)
        procedural = end_to_end(root, "procedural", {
            "train": {"source": "task:arithmetic", "rows": args.rows, "args": {"digits": 3, "ops": ["+", "-", "*"]}},
            "eval": {"source": "task:arithmetic", "rows": 1000, "args": {"digits": 3, "ops": ["+", "-", "*"]}}})
        from_file = end_to_end(root, "file", {"train": {"source": str(big)}, "eval": {"source": str(small)}})
        table("prepare-data end to end (in-process, no CLI start-up)",
              [("task:arithmetic (3 digits, + - *) train + 1k eval", *procedural),
               ("gsm8k-format jsonl train + 1k-row eval file", *from_file)])
        table("file path phases", phases(big, small))
        table("column mapping: plain loop vs datasets.map", mapping_strategies(big))


if __name__ == "__main__":
    main()
