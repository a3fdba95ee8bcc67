"""`rlr prepare-data`: sources -> filters -> mixture -> prompts -> `runs/<name>/data/{train,eval}.jsonl` + manifest.

The stage reads top to bottom: eval first (procedural train rows are generated to exclude it), then train sources,
dedup across sources, eval holdout, decontamination, prompt length, mixture sampling, the optional pass-rate
filter, a seeded shuffle. Everything is computed in memory before the stage directory is touched, so bad input
leaves nothing behind; files are written to temp names and renamed at the end. The same preset and seed give
byte-identical files (rows are dumped with sorted keys), which the manifest's sha256 lets anyone check.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
from collections import Counter
from pathlib import Path
from typing import Any

from rlr.config.load import LoadedConfig
from rlr.data import filters
from rlr.data.prepared import data_dir
from rlr.data.sources import SourceRows, load_source
from rlr.data.templates import chat_template_inserts_think, render_prompt, system_prompt
from rlr.errors import UserError
from rlr.files import atomic_write_files, file_sha256
from rlr.runs import StageRun
from rlr.stage import StageOptions

log = logging.getLogger(__name__)
# One encoder for every row: json.dumps(..., sort_keys=True) builds a new one per call (~20% of write time).
_ENCODE = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode


@dataclasses.dataclass
class Prepared:
    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    by_source: dict[str, dict[str, int]]
    dropped: dict[str, dict[str, int]]
    sources: list[dict[str, Any]]
    pass_rates: list[dict[str, Any]] | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)
    gold_unparseable: dict[str, int] = dataclasses.field(default_factory=dict)


def run_prepare(loaded: LoadedConfig, opts: StageOptions) -> dict[str, Any]:
    cfg = loaded.cfg
    stage = StageRun.of(cfg, "data")
    stage.check_can_start(overwrite=opts.overwrite, resume=opts.resume)  # refuse before any work
    prepared = build_splits(loaded)
    from rlr.config.coerce import to_dict

    inputs = {"sources": prepared.sources, "decontaminate_benchmarks": _benchmark_hashes(loaded)}
    stage.start(config=to_dict(cfg), overwrite=opts.overwrite, resume=opts.resume, inputs=inputs)
    with stage:
        files = {"train.jsonl": prepared.train, "eval.jsonl": prepared.eval if prepared.eval else None,
                 "pass_rates.jsonl": prepared.pass_rates}
        written = write_jsonl_files(stage.path, {k: v for k, v in files.items() if v is not None})
        outputs = {name: {"rows": len(files[name] or []), "sha256": sha} for name, sha in written.items()}
        counts = {"train": len(prepared.train), "eval": len(prepared.eval)}
        stage.finish(outputs=outputs, counts=counts, by_source=prepared.by_source, dropped=prepared.dropped,
                     template=dataclasses.asdict(cfg.template), warnings=prepared.warnings,
                     gold_unparseable=prepared.gold_unparseable)
    return {"run": cfg.run.name, "data_dir": str(data_dir(cfg)), "train_rows": counts["train"],
            "eval_rows": counts["eval"], "by_source": prepared.by_source, "dropped": prepared.dropped,
            "gold_unparseable": prepared.gold_unparseable,
            "sha256": {name: sha for name, sha in written.items()}, "warnings": prepared.warnings,
            "wall_s": stage.manifest().get("duration_s")}


def build_splits(loaded: LoadedConfig) -> Prepared:
    """All the work of the stage, in memory; raises `UserError` naming the source or filter at fault."""
    cfg, data, base = loaded.cfg, loaded.cfg.data, loaded.base_dir
    if not data.train:
        raise UserError("data.train: no training source; add e.g. data: {train: {source: task:arithmetic}}")
    if data.eval and data.eval_holdout:
        raise UserError("data.eval_holdout carves eval rows out of train only when data.eval is empty; remove one")
    system_prompt(cfg.template)  # a typo in template.system fails now, not after loading every source
    dropped: dict[str, Counter[str]] = {"train": Counter(), "eval": Counter()}
    warnings: list[str] = []
    names = _source_names(data.train), _source_names(data.eval)

    eval_rows: list[dict[str, Any]] = []
    eval_sources = []
    for i, spec in enumerate(data.eval):
        seed = spec.seed if spec.seed is not None else cfg.run.seed + 1
        got = _checked(load_source(spec, seed=seed, base_dir=base, split_role="eval", key=f"data.eval[{i}]",
                                   num_proc=data.num_proc), f"data.eval[{i}]")
        eval_rows += [{**r, "_src": i} for r in got.rows]
        dropped["eval"].update(got.dropped)
        eval_sources.append(_describe(spec, got, seed, "eval"))

    targets = mixture_targets(data)
    exclude = {r["question"] for r in eval_rows}
    pool: list[dict[str, Any]] = []
    protected: set[int] = set()
    train_sources = []
    for i, spec in enumerate(data.train):
        seed = spec.seed if spec.seed is not None else cfg.run.seed
        procedural = spec.source.startswith(("task:", "gym:"))
        # File rows are sampled after the filters (so dedup cannot eat into `rows:`); tasks generate exactly that.
        load_spec = spec if procedural else dataclasses.replace(spec, rows=None)
        got = _checked(load_source(load_spec, seed=seed, base_dir=base, split_role="train", exclude=exclude,
                                   key=f"data.train[{i}]", rows=targets[i] if procedural else None,
                                   num_proc=data.num_proc),
                       f"data.train[{i}]")
        if got.repeats:
            protected.update(range(len(pool), len(pool) + len(got.rows)))
        pool += [{**r, "_src": i} for r in got.rows]
        dropped["train"].update(got.dropped)
        warnings += got.warnings
        train_sources.append(_describe(spec, got, seed, "train"))

    pool, n = filters.dedup(pool, data.dedup, protected)
    dropped["train"]["duplicate"] = n
    _require(pool, f"data.dedup={data.dedup}", "set data.dedup: none or add sources")

    if not data.eval and data.eval_holdout:
        pool, eval_rows = _holdout(pool, data.eval_holdout, cfg.run.seed)

    if data.decontaminate.enabled:
        reference = [r["question"] for r in eval_rows]
        reference += filters.benchmark_questions(data.decontaminate.benchmarks, base)
        pool, n = filters.decontaminate(pool, reference, data.decontaminate.ngram)
        dropped["train"]["contaminated"] = n
        _require(pool, "data.decontaminate", "every train row overlaps the eval split or the benchmarks; use other "
                 "data or set data.decontaminate.enabled=false")

    for row in pool + eval_rows:
        row["prompt"] = render_prompt(row["question"], cfg.template, row.get("messages"))

    needs_tokenizer = data.max_prompt_tokens is not None or data.difficulty.enabled
    tokenizer = filters.load_local_tokenizer(cfg, required=needs_tokenizer)
    if needs_tokenizer and cfg.template.chat and not getattr(tokenizer, "chat_template", None):
        raise UserError(f"the tokenizer of {cfg.model.name_or_path} has no chat template; set model.chat_template "
                        "or template.chat: false")
    if tokenizer is not None and cfg.template.chat and chat_template_inserts_think(tokenizer):
        warnings.append(f"the chat template of {cfg.model.name_or_path} already opens <think> in the generation "
                        "prompt: completions start inside the reasoning and never contain <think>, so a format "
                        "reward that requires it stays at zero; use one that accepts a missing opening tag")
    if data.max_prompt_tokens is not None:
        before = len(pool)
        pool, n = filters.filter_prompt_length(pool, tokenizer, data.max_prompt_tokens)
        dropped["train"]["too_long"] = n
        _require(pool, f"data.max_prompt_tokens={data.max_prompt_tokens}",
                 f"all {before} rendered train prompts are longer; raise it")

    train = _sample_mixture(pool, targets, data.train, cfg.run.seed, warnings)
    pass_rates = None
    if data.difficulty.enabled:
        from rlr.data.difficulty import estimate_pass_rates, filter_by_pass_rate

        d = data.difficulty
        rates = estimate_pass_rates(train, cfg, tokenizer, cfg.run.seed)
        before = len(train)
        train, pass_rates = filter_by_pass_rate(train, rates, d.min_pass, d.max_pass)
        dropped["train"]["pass_rate"] = before - len(train)
        _require(train, "data.difficulty", f"no prompt's pass rate over {d.samples} samples lies in "
                 f"[{d.min_pass}, {d.max_pass}] (rates: min {min(rates):.3g}, mean {sum(rates) / len(rates):.3g}, "
                 f"max {max(rates):.3g}); widen the band or start from a stronger model")

    random.Random(cfg.run.seed).shuffle(train)
    gold_unparseable = {"train": _count_unparseable_gold(train, "train", warnings),
                        "eval": _count_unparseable_gold(eval_rows, "eval", warnings)}
    for warning in warnings:
        log.warning("warning: %s", warning)
    by_source = {"train": dict(Counter(names[0][r["_src"]] for r in train)),
                 "eval": dict(Counter(names[1][r["_src"]] if data.eval else "holdout" for r in eval_rows))}
    return Prepared(train=[output_row(r) for r in train], eval=[output_row(r) for r in eval_rows],
                    by_source=by_source, dropped={k: dict(v) for k, v in dropped.items()},
                    sources=train_sources + eval_sources, pass_rates=pass_rates, warnings=warnings,
                    gold_unparseable=gold_unparseable)


def _count_unparseable_gold(rows: list[dict[str, Any]], split: str, warnings: list[str]) -> int:
    """Math rows whose answer math-verify cannot read: kept (the rewards skip them, evaluate counts them), but
    reported, since a source where many are unreadable usually has the wrong answer column or format."""
    math_rows = [r for r in rows if (r.get("task") or "math") == "math"]
    if not math_rows:
        return 0
    from rlr.rewards.correctness import unparseable_gold

    bad = unparseable_gold([r.get("answer") for r in math_rows])
    if bad:
        examples = ", ".join(repr(str(math_rows[i].get("answer")))[:60] for i in bad[:3])
        warnings.append(f"{split}: math-verify cannot read {len(bad)} of {len(math_rows)} gold answers (e.g. "
                        f"{examples}); correctness rewards skip those rows (None) and evaluate counts them as "
                        "gold_unparseable; check the source's answer column and answer_format")
    return len(bad)


def output_row(row: dict[str, Any]) -> dict[str, Any]:
    """The prepared-row schema of rlr.data.prepared; the raw question rides in meta for re-rendering."""
    meta = {**row.get("meta", {}), "question": row["question"]}
    return {"prompt": row["prompt"], "answer": row["answer"], "solution": row.get("solution"), "task": row["task"],
            "meta": _ENCODE(meta)}


def mixture_targets(data: Any) -> list[int | None]:
    """Rows wanted per train source: `rows:` as given, or shares of `data.train_rows` by `weight:` (default 1).

    Largest-remainder rounding makes the shares sum to exactly train_rows.
    """
    specs = data.train
    if data.train_rows is None:
        for i, spec in enumerate(specs):
            if spec.weight is not None:
                raise UserError(f"data.train[{i}].weight needs data.train_rows: set the total rows of the mixture")
        return [spec.rows for spec in specs]
    if data.train_rows < 1:
        raise UserError(f"data.train_rows={data.train_rows} is invalid; use a positive number of rows")
    for i, spec in enumerate(specs):
        if spec.rows is not None:
            raise UserError(f"data.train[{i}]: set rows: or (with data.train_rows) weight:, not both")
        if spec.weight is not None and spec.weight <= 0:
            raise UserError(f"data.train[{i}].weight={spec.weight} is invalid; use a positive weight")
    weights = [1.0 if s.weight is None else float(s.weight) for s in specs]
    exact = [w / sum(weights) * data.train_rows for w in weights]
    targets = [int(x) for x in exact]
    by_remainder = sorted(range(len(specs)), key=lambda i: (-(exact[i] - targets[i]), i))
    for i in by_remainder[: data.train_rows - sum(targets)]:
        targets[i] += 1
    return targets


def _sample_mixture(pool: list[dict], targets: list[int | None], specs: list, seed: int,
                    warnings: list[str]) -> list[dict]:
    """Each source's filtered rows cut (seeded sample) or, in a weighted mixture, repeated up to its target."""
    out: list[dict] = []
    for i, target in enumerate(targets):
        rows = [r for r in pool if r["_src"] == i]
        rng = random.Random(f"mixture:{seed}:{i}")
        procedural = specs[i].source.startswith(("task:", "gym:"))  # generated to size already
        if target is None or procedural or target == len(rows):
            out += rows
        elif target < len(rows):
            out += [rows[j] for j in sorted(rng.sample(range(len(rows)), target))]
        elif specs[i].rows is not None or not rows:
            warnings.append(f"data.train[{i}] ({specs[i].source}): asked for {target} rows, {len(rows)} left after "
                            "filtering; taking them all")
            out += rows
        else:  # a weighted share larger than the source: upsample, as mixtures of small + large sets do
            copies, rest = divmod(target, len(rows))
            warnings.append(f"data.train[{i}] ({specs[i].source}): {len(rows)} rows for a mixture share of "
                            f"{target}; repeating rows")
            out += rows * copies + [rows[j] for j in sorted(rng.sample(range(len(rows)), rest))]
    return out


def _holdout(pool: list[dict], n: int, seed: int) -> tuple[list[dict], list[dict]]:
    if n < 1 or n >= len(pool):
        raise UserError(f"data.eval_holdout={n} must be between 1 and the {len(pool)} train rows minus one; lower it")
    picked = set(random.Random(f"holdout:{seed}").sample(range(len(pool)), n))
    return ([r for j, r in enumerate(pool) if j not in picked],
            [{**r, "_src": 0} for j, r in enumerate(pool) if j in picked])


def _checked(got: SourceRows, key: str) -> SourceRows:
    if not got.rows:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(got.dropped.items())) or "none"
        raise UserError(f"{key}: no usable rows in {got.name} (dropped: {reasons}); check {key}.question/answer and "
                        f"{key}.answer_format")
    return got


def _require(rows: list, what: str, fix: str) -> None:
    if not rows:
        raise UserError(f"{what} left no train rows: {fix}")


def _benchmark_hashes(loaded: LoadedConfig) -> list[dict[str, str | None]]:
    from rlr.paths import resolve_data_path

    out = []
    for ref in loaded.cfg.data.decontaminate.benchmarks:
        path = resolve_data_path(ref, loaded.base_dir)
        out.append({"path": ref, "sha256": file_sha256(path) if path else None})
    return out


def _source_names(specs: list) -> list[str]:
    counts = Counter(s.source for s in specs)
    return [s.source if counts[s.source] == 1 else f"{s.source}#{i}" for i, s in enumerate(specs)]


def _describe(spec: Any, got: SourceRows, seed: int, split: str) -> dict[str, Any]:
    return {"split_role": split, **dataclasses.asdict(spec), "seed_used": seed, "rows_read": len(got.rows),
            "sha256": got.sha256, "answer_format_detected": got.answer_format, "dropped": dict(got.dropped),
            "repeats": got.repeats}


def write_jsonl_files(directory: Path, files: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """Write every split to a temp name first, then rename them all: a failure leaves no half-written split."""
    atomic_write_files(directory, {name: (_ENCODE(row) + "\n" for row in rows) for name, rows in files.items()})
    return {name: file_sha256(directory / name) for name in files}
