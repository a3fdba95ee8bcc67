"""One model on one benchmark: build the generator, generate, score with the training reward's verifier, summarize.

The evaluate stage runs this for every model and benchmark; `sft.stop_at`, the reward doctor and `--completions`
reuse parts of it, so it lives here rather than in the command module (no leaf imports a command).
"""

from __future__ import annotations

from typing import Any

from rlr.errors import UserError
from rlr.evaluate.benchmarks import Benchmark, question_text
from rlr.evaluate.generate import GenerationResult, GenerationSettings


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
                        "truncated": c.truncated, "format_ok": fmt >= 1.0, "gold_unparseable": score is None,
                        **(c.episode or {})})
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

    # a tool-calling generator (evaluate/tool_rollout.py) takes whole rows: an environment resets on the row
    prompts = bench.rows if getattr(generator, "takes_rows", False) else [row["prompt"] for row in bench.rows]
    gen = generator.generate(prompts, settings, description=f"{label} on {bench.name}")
    problems, records, unparseable = score_generation(bench, gen, "sample", scorer, answer_format)
    metrics = summarize(problems, ks, seed=settings.seed)
    metrics["gold_unparseable"] = unparseable  # problems left out of every metric: their gold cannot be read
    metrics.update(gen.extra)  # tool calls, errors and turns per episode; {} without tools
    metrics["timing"] = _timing(gen)
    if greedy:
        greedy_gen = generator.generate(prompts, replace(settings, greedy=True), description=f"{label} greedy")
        greedy_problems, greedy_records, _ = score_generation(bench, greedy_gen, "greedy", scorer, answer_format)
        values = [float(p.correct[0]) for p in greedy_problems]
        metrics["greedy_accuracy"] = sum(values) / len(values)
        metrics["greedy_accuracy_ci"] = list(bootstrap_ci(values, seed=settings.seed))
        metrics["timing"]["greedy"] = _timing(greedy_gen)
        metrics.update({f"greedy_{k}": v for k, v in greedy_gen.extra.items()})
        records += greedy_records
    return metrics, records


def generation_settings(cfg: Any) -> GenerationSettings:
    ev = cfg.eval
    return GenerationSettings(n=ev.samples, temperature=ev.temperature, top_p=ev.top_p,
                              max_new_tokens=ev.max_new_tokens, batch_size=ev.batch_size, seed=cfg.run.seed)
