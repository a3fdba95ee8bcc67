"""`rlr evaluate`: sample completions on each benchmark, score them with the training verifier, compare models.

Reads as a recipe: resolve benchmarks and gates (cheap checks first, so a typo fails before any generation),
resolve the models, load the rows, then per model: load (adapters stay unmerged: what is evaluated is what was
trained), generate, score, summarize, write `eval/<label>/`; finally rebuild the comparison and check gates.

Correctness is the `accuracy` reward object training uses (`rlr.rewards.accuracy.TaskScore`, with the math-verify
settings the preset's rewards give), so "accuracy went up" means the same thing in training logs and here. A
problem whose ground truth cannot be read is counted (`gold_unparseable`) and left out of every metric.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rlr.errors import UserError
from rlr.evaluate.benchmarks import Benchmark, load_rows, resolve_benchmarks, sanitize
from rlr.evaluate.compare import (
    check_gates,
    metric_names,
    parse_gates,
    print_comparison,
    raise_on_failures,
    summary_rows,
    write_comparison,
)
from rlr.evaluate.scoring import (
    build_generator,
    evaluate_benchmark,
    generation_settings,
)
from rlr.paths import RESULTS_FILE
from rlr.stage import EvaluateOptions


def model_label(spec: str) -> str:
    """`base`/`sft`/`rl`/`export` as is; a path or hub id by its last part (`model` dirs by parent too)."""
    if spec in ("base", "sft", "rl", "export"):
        return spec
    parts = [p for p in Path(spec).parts if p not in ("/", ".", "..")]
    if not parts:
        return sanitize(spec)
    name = parts[-1]
    if name in ("model", "final", "adapter") and len(parts) > 1:
        name = f"{parts[-2]}-{name}"
    return sanitize(name)


def default_model(cfg: Any) -> str:
    """rl if that stage is complete, else sft, else the base model."""
    from rlr.runs import StageRun

    for stage in ("rl", "sft"):
        if StageRun.of(cfg, stage).is_complete():
            return stage
    return "base"


def resolve_models(specs: list[str], cfg: Any) -> list[tuple[str, str, Any]]:
    """(label, spec, ModelRef) per `--model`; labels must be unique since each gets its own directory."""
    from rlr.models.references import resolve_model_ref

    out = []
    for spec in specs or [default_model(cfg)]:
        out.append((model_label(spec), spec, resolve_model_ref(spec, cfg)))
    labels = [label for label, _, _ in out]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise UserError(f"--model: two models would both be labelled {', '.join(dupes)}; evaluate them in separate "
                        "runs or give directories distinct names")
    return out


def identity_of(spec: str, ref: Any, cfg: Any, benchmarks: list[Benchmark], limit: int | None) -> dict[str, Any]:
    """What this model's evaluation depends on; a completed one with the same identity is reused."""
    from rlr.evaluate.reuse import evaluation_identity

    ev = cfg.eval
    from rlr.evaluate.tool_rollout import tool_identity

    generation = {**generation_settings(cfg).as_dict(), "backend": ev.backend, "greedy_extra": ev.greedy,
                  **tool_identity(cfg)}  # {} without rl.tools / rl.environment
    from rlr.rewards.accuracy import TaskScore
    from rlr.rewards.math_extract import DEFINITION

    verifier = {"definition": DEFINITION, **TaskScore.from_reward_specs(cfg.rewards).settings.as_dict()}
    return evaluation_identity({"requested": spec, **ref.as_dict()}, [b.describe() for b in benchmarks], generation,
                               list(ev.k), limit, verifier)


def evaluate_model(label: str, spec: str, ref: Any, loaded: Any, benchmarks: list[Benchmark], stage: Any,
                   device: Any, opts: Any, limit: int | None) -> dict[str, Any]:
    from rlr.config.coerce import to_dict
    from rlr.files import atomic_write_json, atomic_write_text
    from rlr.runs import now_iso

    cfg, ev = loaded.cfg, loaded.cfg.eval
    settings = generation_settings(cfg)
    model_info = {"requested": spec, **ref.as_dict()}
    stage.start(config=to_dict(cfg), overwrite=opts.overwrite, resume=opts.resume, device=device.as_dict(),
                inputs={"model": model_info, "benchmarks": [b.describe() for b in benchmarks]})
    write_comparison(stage.path.parent)  # now, not only at the end: a kill must not leave this label's old row
    with stage:
        from rlr.rewards.accuracy import TaskScore

        scorer = TaskScore.from_reward_specs(cfg.rewards)  # the training verifier, with the preset's settings
        from rlr.evaluate.tool_rollout import with_tools

        generator = with_tools(build_generator(ref, cfg, device), loaded)  # as is without rl.tools / rl.environment
        per_bench: dict[str, Any] = {}
        samples: list[dict[str, Any]] = []
        for bench in benchmarks:
            per_bench[bench.name], records = evaluate_benchmark(generator, bench, settings, list(ev.k), ev.greedy,
                                                                label, scorer, cfg.template.answer_format)
            samples += records
            stage.log_metrics({"benchmark": bench.name, **{k: v for k, v in per_bench[bench.name].items()
                                                           if not isinstance(v, (dict, list))}})
        identity = identity_of(spec, ref, cfg, benchmarks, limit)
        result = {"label": label, "model": model_info, "evaluated_at": now_iso(), "generation": identity["generation"],
                  "limit": limit, "device": device.as_dict(), "benchmarks": per_bench, "identity": identity}
        atomic_write_text(stage.path / "samples.jsonl", "".join(json.dumps(r, default=str) + "\n" for r in samples))
        atomic_write_json(stage.path / RESULTS_FILE, result)
        stage.finish("complete", outputs={"results": RESULTS_FILE, "samples": "samples.jsonl"})
    return result


def reused_results(models: list[tuple[str, str, Any]], stages: dict[str, Any], cfg: Any,
                   benchmarks: list[Benchmark], limit: int | None, overwrite: bool) -> dict[str, dict[str, Any]]:
    """Stored results of the completed evaluations that asked the same question (else a UserError saying why)."""
    from rlr.console import stderr
    from rlr.evaluate.reuse import reusable_results

    out = {}
    for label, spec, ref in models:
        stage = stages[label]
        if overwrite or not stage.is_complete():
            continue
        out[label] = reusable_results(stage.path, identity_of(spec, ref, cfg, benchmarks, limit),
                                      [ref.base, *ref.adapters])
        stderr.print(f"{stage.path}: complete with the same model and settings, reusing its results "
                     "(--overwrite re-evaluates)")
    return out


def say_interrupted(models: list[tuple[str, str, Any]], results: dict[str, Any], eval_dir: Path) -> None:
    """Ctrl-C: which evaluations are kept (complete ones are reused by the next run) and how to go on."""
    from rlr.console import stderr

    done = [label for label, _, _ in models if label in results]
    cut = next((label for label, _, _ in models if label not in results), None)
    kept = f"results of {', '.join(done)} are kept in {eval_dir}" if done else "no model's evaluation had finished"
    stderr.print(f"evaluate interrupted during {cut}: {kept}; {cut}'s partial samples were discarded. Rerun the same "
                 "command to go on (complete evaluations are reused, not redone)", markup=False, highlight=False,
                 soft_wrap=True)


def run_evaluate(loaded: Any, opts: EvaluateOptions) -> dict[str, Any]:
    from rlr import paths
    from rlr.device import resolve_device
    from rlr.runs import StageRun

    started = time.time()
    cfg, ev = loaded.cfg, loaded.cfg.eval
    limit = opts.limit if opts.limit is not None else ev.limit
    if limit is not None and limit < 1:
        raise UserError(f"--limit {limit}: give a positive number of problems")
    # eval.k <= eval.samples is checked once, when the config loads (EvalSection.rules in rlr/config/schema.py)
    benchmarks = resolve_benchmarks(list(ev.benchmarks), loaded.base_dir)
    # gates are parsed before anything is scored, for completions files too (no greedy run there)
    gates = parse_gates(list(opts.mins), [b.name for b in benchmarks],
                        metric_names(list(ev.k), ev.greedy and opts.completions is None))
    if opts.completions is not None:  # completions generated elsewhere: score them, no model
        from rlr.evaluate.completions import score_completions_file

        for bench in benchmarks:
            load_rows(bench, loaded, limit)
        summary, per_bench = score_completions_file(loaded, opts, benchmarks, Path(opts.completions), limit)
        failures = check_gates(gates, {Path(summary["eval_dir"]).name: {"benchmarks": per_bench}})
        summary.update(gates=[f"{g.key}>={g.threshold}" for g in gates], gate_failures=failures,
                       wall_s=round(time.time() - started, 2))
        raise_on_failures(failures, summary)
        return summary
    if ev.backend == "vllm":
        from rlr.evaluate.generate import check_vllm_available

        check_vllm_available()
    models = resolve_models(list(opts.models), cfg)
    stages = {label: StageRun.of(cfg, paths.eval_stage(label)) for label, _, _ in models}
    for stage in stages.values():
        if not stage.is_complete():  # a complete one is reused or refused below, once the rows are known
            stage.check_can_start(overwrite=opts.overwrite, resume=opts.resume)
    for bench in benchmarks:
        load_rows(bench, loaded, limit)
    results = reused_results(models, stages, cfg, benchmarks, limit, opts.overwrite)
    reused = set(results)
    device = resolve_device(cfg.model.dtype)
    eval_dir = paths.eval_dir(cfg)
    try:
        for label, spec, ref in models:
            if label not in results:
                results[label] = evaluate_model(label, spec, ref, loaded, benchmarks, stages[label], device, opts,
                                                limit)
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            say_interrupted(models, results, eval_dir)
        try:  # a later model failing must not leave the comparison without the ones that finished
            write_comparison(eval_dir)
        except OSError:
            pass  # the disk itself failed (full, read-only): the error being raised says so, this one would hide it
        raise
    comparison = write_comparison(eval_dir)
    print_comparison(comparison)
    results = {label: results[label] for label, _, _ in models}  # --model order, reused or not
    failures = check_gates(gates, results)
    summary = {"eval_dir": str(eval_dir), "models": list(results), "reused": sorted(reused),
               "benchmarks": [b.name for b in benchmarks],
               "gates": [f"{g.key}>={g.threshold}" for g in gates], "gate_failures": failures}
    if opts.json:  # humans already saw the table above; --json readers get it as rows
        summary["comparison"] = summary_rows(comparison)
    summary["wall_s"] = round(time.time() - started, 2)  # the key every stage summary uses
    raise_on_failures(failures, summary)
    return summary
