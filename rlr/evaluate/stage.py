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
from pathlib import Path
from typing import Any

from rlr.errors import UserError
from rlr.evaluate.benchmarks import Benchmark, load_rows, question_text, resolve_benchmarks, sanitize
from rlr.evaluate.compare import (
    check_gates,
    metric_names,
    parse_gates,
    print_comparison,
    raise_on_failures,
    summary_rows,
    write_comparison,
)
from rlr.evaluate.generate import GenerationResult, GenerationSettings
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


def build_generator(ref: Any, cfg: Any, device: Any) -> Any:
    from rlr.models.loading import load_tokenizer

    tokenizer = load_tokenizer(ref.tokenizer_source(), cfg.model, padding_side="left")
    if cfg.eval.backend == "vllm":
        from rlr.evaluate.generate import VLLMGenerator, check_vllm_available

        check_vllm_available()
        if len(ref.adapters) > 1:
            raise UserError("vLLM applies one LoRA adapter, this model stacks several; `rlr export` it (merges) and "
                            "evaluate the export, or use eval.backend=hf")
        return VLLMGenerator(ref.base, ref.adapters[0] if ref.adapters else None, tokenizer, device.dtype,
                             cfg.run.seed)
    from rlr.evaluate.generate import HFGenerator
    from rlr.models.loading import load_model_ref

    model = load_model_ref(ref, cfg.model, device).to(device.device).eval()
    return HFGenerator(model, tokenizer, device.device)


def score_generation(bench: Benchmark, gen: GenerationResult, mode: str, scorer: Any = None,
                     answer_format: str | None = None) -> tuple[list[Any], list[dict[str, Any]], int]:
    """ProblemSamples per scorable problem, the samples.jsonl records, and how many problems were left out because
    their ground truth is missing or cannot be parsed (`gold_unparseable`), from one generation pass.

    `scorer` is the training reward object (`TaskScore`, with the preset's math-verify settings): it returns None
    for a row it cannot score, and such a row is counted, not scored 0 (which would lower accuracy for a broken
    row) nor 1. `format_ok` is the shape the template's `answer_format` asked for (`follows_answer_format`).
    """
    from rlr.evaluate.metrics import ProblemSamples
    from rlr.rewards.accuracy import TaskScore
    from rlr.rewards.extract import extract_answer
    from rlr.rewards.format import follows_answer_format

    scorer = scorer or TaskScore()
    flat = [(i, j, c) for i, comps in enumerate(gen.completions) for j, c in enumerate(comps)]
    rows = bench.rows
    texts = [c.text for _, _, c in flat]
    scores = scorer(texts, answer=[rows[i].get("answer") for i, _, _ in flat],
                    task=[rows[i].get("task") or "math" for i, _, _ in flat],
                    meta=[rows[i].get("meta") for i, _, _ in flat])
    formats = follows_answer_format(texts, [gen.prompt_texts[i] for i, _, _ in flat], answer_format)
    problems = [ProblemSamples(answers=[], correct=[], lengths=[], truncated=[], format_ok=[], scores=[],
                               task=str(row.get("task") or "math")) for row in rows]
    unscorable: set[int] = set()
    records = []
    for (i, j, c), score, fmt in zip(flat, scores, formats, strict=True):
        extracted = extract_answer(c.text)
        if score is None:
            unscorable.add(i)
        p = problems[i]
        p.answers.append(extracted)
        p.correct.append(score is not None and score >= 1.0)
        p.scores.append(score or 0.0)
        p.lengths.append(c.length)
        p.truncated.append(c.truncated)
        p.format_ok.append(fmt >= 1.0)
        records.append({"benchmark": bench.name, "problem": i, "mode": mode, "sample": j,
                        "question": question_text(rows[i]), "prompt": gen.prompt_texts[i],
                        "answer": rows[i].get("answer"), "completion": c.text, "extracted": extracted,
                        "correct": None if score is None else score >= 1.0, "score": score, "length": c.length,
                        "truncated": c.truncated, "format_ok": fmt >= 1.0, "gold_unparseable": score is None})
    kept = [p for i, p in enumerate(problems) if i not in unscorable]
    if rows and not kept:
        raise UserError(f"benchmark {bench.name!r}: none of its {len(rows)} ground-truth answers can be read by the "
                        "verifier (missing, or math-verify cannot parse them); check its answer column "
                        "(`rlr prepare-data` reports unparseable answers)")
    return kept, records, len(unscorable)


def _timing(gen: GenerationResult) -> dict[str, Any]:
    return {"seconds": round(gen.seconds, 3), "generated_tokens": gen.generated_tokens,
            "tokens_per_s": round(gen.tokens_per_s, 1), "problems_per_s": round(gen.problems_per_s, 3)}


def evaluate_benchmark(generator: Any, bench: Benchmark, settings: GenerationSettings, ks: list[int],
                       greedy: bool, label: str, scorer: Any = None,
                       answer_format: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from dataclasses import replace

    from rlr.evaluate.metrics import bootstrap_ci, summarize

    prompts = [row["prompt"] for row in bench.rows]
    gen = generator.generate(prompts, settings, description=f"{label} on {bench.name}")
    problems, records, unparseable = score_generation(bench, gen, "sample", scorer, answer_format)
    metrics = summarize(problems, ks, seed=settings.seed)
    metrics["gold_unparseable"] = unparseable  # problems left out of every metric: their gold cannot be read
    metrics["timing"] = _timing(gen)
    if greedy:
        greedy_gen = generator.generate(prompts, replace(settings, greedy=True), description=f"{label} greedy")
        greedy_problems, greedy_records, _ = score_generation(bench, greedy_gen, "greedy", scorer, answer_format)
        values = [float(p.correct[0]) for p in greedy_problems]
        metrics["greedy_accuracy"] = sum(values) / len(values)
        metrics["greedy_accuracy_ci"] = list(bootstrap_ci(values, seed=settings.seed))
        metrics["timing"]["greedy"] = _timing(greedy_gen)
        records += greedy_records
    return metrics, records


def generation_settings(cfg: Any) -> GenerationSettings:
    ev = cfg.eval
    return GenerationSettings(n=ev.samples, temperature=ev.temperature, top_p=ev.top_p,
                              max_new_tokens=ev.max_new_tokens, batch_size=ev.batch_size, seed=cfg.run.seed)


def identity_of(spec: str, ref: Any, cfg: Any, benchmarks: list[Benchmark], limit: int | None) -> dict[str, Any]:
    """What this model's evaluation depends on; a completed one with the same identity is reused."""
    from rlr.evaluate.reuse import evaluation_identity

    ev = cfg.eval
    generation = {**generation_settings(cfg).as_dict(), "backend": ev.backend, "greedy_extra": ev.greedy}
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
        generator = build_generator(ref, cfg, device)
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
        atomic_write_json(stage.path / "results.json", result)
        stage.finish("complete", outputs={"results": "results.json", "samples": "samples.jsonl"})
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
    from rlr.paths import run_root
    from rlr.runs import StageRun

    cfg, ev = loaded.cfg, loaded.cfg.eval
    limit = opts.limit if opts.limit is not None else ev.limit
    if limit is not None and limit < 1:
        raise UserError(f"--limit {limit}: give a positive number of problems")
    # eval.k <= eval.samples is checked once, when the config loads (rlr/config/load.py)
    benchmarks = resolve_benchmarks(list(ev.benchmarks), loaded.base_dir)
    if opts.completions is not None:  # completions generated elsewhere: score them, no model
        from rlr.evaluate.completions import score_completions_file

        for bench in benchmarks:
            load_rows(bench, loaded, limit)
        return score_completions_file(loaded, opts, benchmarks, Path(opts.completions))
    gates = parse_gates(list(opts.mins), [b.name for b in benchmarks],
                        metric_names(list(ev.k), ev.greedy))
    if ev.backend == "vllm":
        from rlr.evaluate.generate import check_vllm_available

        check_vllm_available()
    models = resolve_models(list(opts.models), cfg)
    stages = {label: StageRun(run_root(cfg), f"eval/{label}") for label, _, _ in models}
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
    except KeyboardInterrupt:
        say_interrupted(models, results, eval_dir)
        raise
    finally:  # a later model failing must not leave the comparison without the ones that finished
        comparison = write_comparison(eval_dir)
    print_comparison(comparison)
    results = {label: results[label] for label, _, _ in models}  # --model order, reused or not
    failures = check_gates(gates, results)
    summary = {"eval_dir": str(eval_dir), "models": list(results), "reused": sorted(reused),
               "benchmarks": [b.name for b in benchmarks],
               "gates": [f"{g.key}>={g.threshold}" for g in gates], "gate_failures": failures}
    if opts.json:  # humans already saw the table above; --json readers get it as rows
        summary["comparison"] = summary_rows(comparison)
    raise_on_failures(failures, summary)
    return summary
