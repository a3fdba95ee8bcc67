"""`rlr evaluate PRESET --completions FILE.jsonl`: score completions generated elsewhere (vLLM, an API, any tool).

One JSON object per line: `completion` plus `id` (the benchmark's id column; HumanEval's `task_id`) or
`question` (the question text), optionally `benchmark` when several are configured. Several lines per problem
give pass@k. The verifiers and metrics are the ones `rlr evaluate` uses on its own generations
(`score_generation`, `summarize`); only problems that have completions are scored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlr.errors import UserError


def read_completions(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise UserError(f"--completions: no such file '{path}'; give a .jsonl with id/question and completion")
    records = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise UserError(f"{path}:{lineno}: not a JSON object; write one object per line") from None
        if not isinstance(record, dict) or not isinstance(record.get("completion"), str):
            raise UserError(f"{path}:{lineno}: needs a string 'completion' (and 'id' or 'question')")
        if record.get("id") is None and not isinstance(record.get("question"), str):
            raise UserError(f"{path}:{lineno}: needs 'id' (the benchmark's id column, e.g. HumanEval's task_id) "
                            "or 'question'")
        records.append(record)
    if not records:
        raise UserError(f"--completions: {path} has no completions")
    return records


def _match(records: list[dict[str, Any]], benchmarks: list[Any], path: Path) -> dict[str, dict[int, list[str]]]:
    from rlr.evaluate.benchmarks import question_text

    index: dict[tuple[str, str, str], int] = {}
    for bench in benchmarks:
        for i, row in enumerate(bench.rows):
            for key in ("id", "task_id"):
                if row.get(key) is not None:
                    index.setdefault((bench.name, "id", str(row[key])), i)
            index.setdefault((bench.name, "question", question_text(row)), i)
    out: dict[str, dict[int, list[str]]] = {b.name: {} for b in benchmarks}
    for n, record in enumerate(records, 1):
        names = [record["benchmark"]] if record.get("benchmark") else [b.name for b in benchmarks]
        kind, value = ("id", str(record["id"])) if record.get("id") is not None else ("question", record["question"])
        hits = [(name, index[(name, kind, value)]) for name in names if (name, kind, value) in index]
        if not hits:
            raise UserError(f"{path}: completion {n} ({kind} {value[:60]!r}) matches no problem of "
                            f"{', '.join(names)}; check the id/question (or the benchmark name)")
        name, i = hits[0]
        out[name].setdefault(i, []).append(record["completion"])
    return out


def score_completions_file(loaded: Any, opts: Any, benchmarks: list[Any], path: Path) -> dict[str, Any]:
    from rlr.console import stderr
    from rlr.evaluate.benchmarks import sanitize
    from rlr.evaluate.generate import Completion, GenerationResult
    from rlr.evaluate.metrics import summarize
    from rlr.evaluate.stage import score_generation
    from rlr.files import atomic_write_json, atomic_write_text
    from rlr.paths import run_root

    cfg = loaded.cfg
    records = read_completions(path)
    matched = _match(records, benchmarks, path)
    label = "completions-" + sanitize(path.stem)
    out_dir = run_root(cfg) / "eval" / label
    per_bench: dict[str, Any] = {}
    samples: list[dict[str, Any]] = []
    for bench in benchmarks:
        chosen = sorted(matched[bench.name])
        if not chosen:
            continue
        bench.rows = [bench.rows[i] for i in chosen]
        texts = [matched[bench.name][i] for i in chosen]
        gen = GenerationResult(completions=[[Completion(t, len(t.split()), False) for t in group] for group in texts],
                               prompt_texts=[str(r.get("question") or r.get("prompt")) for r in bench.rows],
                               seconds=0.0, generated_tokens=0)
        from rlr.rewards.accuracy import TaskScore

        problems, bench_records, unparseable = score_generation(bench, gen, "sample",
                                                                TaskScore.from_reward_specs(cfg.rewards),
                                                                cfg.template.answer_format)
        n_min = min(len(g) for g in texts)
        ks = sorted({1, *(k for k in cfg.eval.k if k <= n_min)})
        per_bench[bench.name] = {**summarize(problems, ks, seed=cfg.run.seed), "problems": len(chosen),
                                 "samples_per_problem_min": n_min, "gold_unparseable": unparseable}
        samples += bench_records
        stderr.print(f"{bench.name}: {len(chosen)} problems, " +
                     ", ".join(f"pass@{k}={per_bench[bench.name][f'pass@{k}']:.3f}" for k in ks))
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {"label": label, "completions_file": str(path), "benchmarks": per_bench}
    atomic_write_text(out_dir / "samples.jsonl", "".join(json.dumps(r, default=str) + "\n" for r in samples))
    atomic_write_json(out_dir / "results.json", result)
    return {"eval_dir": str(out_dir), "completions_file": str(path), "benchmarks": list(per_bench),
            "metrics": {name: {k: v for k, v in m.items() if k.startswith("pass@") and not k.endswith("_ci")}
                        for name, m in per_bench.items()}}
