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
from rlr.paths import RESULTS_FILE, eval_stage, run_root


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
        if record.get("benchmark") is not None and not isinstance(record["benchmark"], str):
            raise UserError(f"{path}:{lineno}: 'benchmark' must be a benchmark's name (eval.benchmarks), "
                            f"got {record['benchmark']!r}")
        if record.get("id") is None and not isinstance(record.get("question"), str):
            raise UserError(f"{path}:{lineno}: needs 'id' (the benchmark's id column, e.g. HumanEval's task_id) "
                            "or 'question'")
        records.append(record)
    if not records:
        raise UserError(f"--completions: {path} has no completions")
    return records


def _match(records: list[dict[str, Any]], benchmarks: list[Any], path: Path, limit: int | None = None
           ) -> dict[str, dict[int, list[str]]]:
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
            limited = (f" among the first {limit} (--limit {limit} / eval.limit keeps only those; raise or drop it)"
                       if limit is not None else "")
            raise UserError(f"{path}: completion {n} ({kind} {value[:60]!r}) matches no problem of "
                            f"{', '.join(names)}{limited}; check the id/question (or the benchmark name)")
        name, i = hits[0]
        out[name].setdefault(i, []).append(record["completion"])
    return out


def score_completions_file(loaded: Any, opts: Any, benchmarks: list[Any], path: Path, limit: int | None = None
                           ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the --json summary, the metrics per benchmark that `--min` gates read)."""
    from rlr.config.coerce import to_dict
    from rlr.console import stderr
    from rlr.evaluate.benchmarks import sanitize
    from rlr.evaluate.compare import write_comparison
    from rlr.evaluate.reuse import changes_text
    from rlr.files import atomic_write_json
    from rlr.runs import StageRun, now_iso

    cfg = loaded.cfg
    records = read_completions(path)
    matched = _match(records, benchmarks, path, limit)  # bad input is refused before anything is written
    label = "completions-" + sanitize(path.stem)
    stage = StageRun(run_root(cfg), eval_stage(label))
    inputs = completions_inputs(path, records, benchmarks, cfg)
    if stage.is_complete() and not opts.overwrite:
        stored = stage.manifest().get("inputs") or {}
        if changes := changes_text(stored, inputs):  # was only "already complete", not what changed
            raise UserError(f"{stage.path} is already complete for other inputs ({changes}); pass --overwrite to "
                            "rescore")
        stderr.print(f"{stage.path}: complete for the same file (sha256) and verifier, reusing its results "
                     "(--overwrite rescores)")
        per_bench = json.loads((stage.path / RESULTS_FILE).read_text())["benchmarks"]
        return _summary(stage.path, path, per_bench), per_bench
    # rescoring is cheap and has nothing to resume: an unfinished stage is redone; a complete one of another file
    # or verifier needs --overwrite, as every stage does
    stage.start(config=to_dict(cfg), overwrite=opts.overwrite or not stage.is_complete(), resume=False,
                inputs=inputs)
    with stage:
        result = _score(cfg, benchmarks, matched, label, path, stage)
        result["evaluated_at"] = now_iso()
        result["identity"] = inputs
        atomic_write_json(stage.path / RESULTS_FILE, result)
        stage.finish("complete", outputs={"results": RESULTS_FILE, "samples": "samples.jsonl"})
    write_comparison(stage.path.parent)
    return _summary(stage.path, path, result["benchmarks"]), result["benchmarks"]


def completions_inputs(path: Path, records: list[dict[str, Any]], benchmarks: list[Any], cfg: Any) -> dict[str, Any]:
    """What the scores depend on, for the manifest (and reuse): the file by content, and the verifier."""
    from rlr.files import file_sha256
    from rlr.rewards.accuracy import TaskScore
    from rlr.rewards.math_extract import DEFINITION

    with open(path, "rb") as f:
        lines = sum(1 for _ in f)
    verifier = {"definition": DEFINITION, **TaskScore.from_reward_specs(cfg.rewards).settings.as_dict(),
                "answer_format": cfg.template.answer_format}
    inputs = {"completions": {"path": str(path.resolve()), "sha256": file_sha256(path), "lines": lines,
                              "records": len(records)},
              "benchmarks": [b.describe() for b in benchmarks], "verifier": verifier, "k": list(cfg.eval.k)}
    return json.loads(json.dumps(inputs, default=str))  # as the manifest stores it, so the reuse test compares alike


def _summary(out_dir: Path, path: Path, per_bench: dict[str, Any]) -> dict[str, Any]:
    return {"eval_dir": str(out_dir), "completions_file": str(path), "benchmarks": list(per_bench),
            "metrics": {name: {k: v for k, v in m.items() if k.startswith("pass@") and not k.endswith("_ci")}
                        for name, m in per_bench.items()}}


def _score(cfg: Any, benchmarks: list[Any], matched: dict[str, dict[int, list[str]]], label: str, path: Path,
           stage: Any) -> dict[str, Any]:
    from rlr.console import stderr
    from rlr.evaluate.generate import Completion, GenerationResult
    from rlr.evaluate.metrics import summarize
    from rlr.evaluate.scoring import score_generation
    from rlr.files import atomic_write_text

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
        stage.log_metrics({"benchmark": bench.name, **{k: v for k, v in per_bench[bench.name].items()
                                                       if not isinstance(v, (dict, list))}})
    atomic_write_text(stage.path / "samples.jsonl", "".join(json.dumps(r, default=str) + "\n" for r in samples))
    return {"label": label, "model": {"completions_file": str(path)}, "completions_file": str(path),
            "benchmarks": per_bench}
