"""`rlr rewards check <preset>`: sample completions (or read them) and run the preset's rewards on them.

Completions come from `--completions FILE.jsonl` when given, else from the model RL would start from (the
run's sft output when complete, else the base model), sampled like the trainer samples (rl.trainer's
temperature and max_completion_length). Rows are the first `prompts` rows of the prepared train split.

Completions file: one JSON object per line with `completion` (a string) or `completions` (a list), and
either `row` (index into the prepared train split) or the row's own columns (`answer`, `task`, `meta`,
`prompt`), which needs no prepared data at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlr.errors import UserError
from rlr.rewards.doctor import chat_template_inserts_think, check_rewards
from rlr.rewards.registry import build_reward_functions

_ROW_KEYS = ("prompt", "answer", "solution", "task", "meta")


def read_completions_file(path: Path, train_rows: Any) -> tuple[list[dict[str, Any]], list[list[str]]]:
    """(rows, completions per row) from a JSONL file; `train_rows()` loads the prepared split when needed."""
    if not path.is_file():
        raise UserError(f"--completions {path}: no such file; give a JSONL with one {{'row', 'completion'}} per line")
    rows: list[dict[str, Any]] = []
    completions: list[list[str]] = []
    index: dict[Any, int] = {}
    prepared: list[dict[str, Any]] | None = None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            texts = item["completions"] if "completions" in item else [item["completion"]]
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{path}:{number}: expected a JSON object with 'completion' or 'completions'") from None
        if not isinstance(texts, list):  # a string would be scored as one completion per character
            raise UserError(f"{path}:{number}: 'completions' must be a list of strings (or give one 'completion')")
        if "row" in item:
            if isinstance(item["row"], bool) or not isinstance(item["row"], int):
                raise UserError(f"{path}:{number}: 'row' must be an index into the train split (an integer), "
                                f"got {item['row']!r}")
            prepared = prepared if prepared is not None else train_rows()
            if not 0 <= int(item["row"]) < len(prepared):
                raise UserError(
                    f"{path}:{number}: row {item['row']} is outside the train split (0..{len(prepared) - 1})"
                )
            key: Any = ("row", int(item["row"]))
            row = prepared[int(item["row"])]
        else:
            if "answer" not in item:
                raise UserError(f"{path}:{number}: give 'row' (index into the train split) or the row's 'answer'")
            row = {k: item.get(k) for k in _ROW_KEYS}
            row["task"] = row["task"] or "math"
            key = json.dumps(row, sort_keys=True, default=str)
        if key not in index:
            index[key] = len(rows)
            rows.append(row)
            completions.append([])
        completions[index[key]].extend(str(t) for t in texts)
    if not rows:
        raise UserError(f"--completions {path}: the file has no completions")
    return rows, completions


def _sample(loaded: Any, rows: list[dict[str, Any]], samples: int) -> tuple[list[list[str]], bool]:
    """Completions from the model RL starts from, and whether its chat template opens <think> itself."""
    from rlr.device import resolve_device
    from rlr.evaluate.generate import GenerationSettings
    from rlr.evaluate.scoring import build_generator
    from rlr.models.references import resolve_model_ref
    from rlr.runs import StageRun

    cfg = loaded.cfg
    start = "sft" if StageRun.of(cfg, "sft").is_complete() else "base"
    trainer = dict(cfg.rl.trainer or {})
    settings = GenerationSettings(
        n=samples,
        temperature=float(trainer.get("temperature", 1.0)),
        top_p=float(trainer.get("top_p", 1.0)),
        max_new_tokens=int(trainer.get("max_completion_length", cfg.eval.max_new_tokens)),
        batch_size=cfg.eval.batch_size,
        seed=cfg.run.seed,
    )
    generator = build_generator(resolve_model_ref(start, cfg), cfg, resolve_device(cfg.model.dtype))
    result = generator.generate([row["prompt"] for row in rows], settings, description=f"sampling ({start})")
    tokenizer = getattr(generator, "tokenizer", None)
    inserts_think = tokenizer is not None and chat_template_inserts_think(tokenizer)
    return [[c.text for c in per_row] for per_row in result.completions], inserts_think


def run_reward_doctor(
    loaded: Any, completions_file: Path | None = None, samples: int = 4, prompts: int = 4, as_json: bool = False
) -> dict[str, Any]:
    """Score completions with every reward of the preset; render the table (stderr) unless `as_json`."""
    from rlr.data.prepared import load_split

    cfg = loaded.cfg
    if not cfg.rewards:
        raise UserError("the preset has no `rewards:`; add e.g. `- {name: math_accuracy, weight: 1.0}`")
    if prompts < 1 or samples < 1:
        raise UserError("--prompts and --samples must be at least 1")
    funcs, _ = build_reward_functions(cfg.rewards, loaded.base_dir)
    inserts_think = None
    if completions_file is not None:
        rows, completions = read_completions_file(Path(completions_file), lambda: load_split(cfg, "train"))
    else:
        rows = load_split(cfg, "train")[:prompts]
        completions, inserts_think = _sample(loaded, rows, samples)
    report = check_rewards(rows, completions, funcs, [f.__name__ for f in funcs])
    if inserts_think:
        report.warnings.append(
            "the chat template opens <think> in the generation prompt: completions start inside the reasoning, "
            "so format rewards must not require them to open it (think_format's default accepts both)"
        )
    if not as_json:
        report.render()
    return {**report.to_dict(), "chat_template_inserts_think": inserts_think}


def run_gold_check(loaded: Any, prompts: int | None = None, max_error_rate: float = 0.02,
                   as_json: bool = False) -> dict[str, Any]:
    """`--gold`: every correctness reward on each row's own reference (must pay 1) and another row's (must pay 0).

    Rows are the first `prompts` rows of the prepared train split (all when None). Raises GateFailed past
    `max_error_rate`, with the summary for --json.
    """
    from rlr.data.prepared import load_split
    from rlr.data.templates import system_prompt
    from rlr.errors import GateFailed
    from rlr.rewards.accuracy import TaskScore
    from rlr.rewards.base import measures_correctness
    from rlr.rewards.gold_check import check_gold

    cfg = loaded.cfg
    if not 0 <= max_error_rate < 1:
        raise UserError(f"--max-error-rate {max_error_rate}: give a fraction in [0, 1), e.g. 0.02")
    if prompts is not None and prompts < 1:
        raise UserError("--prompts must be at least 1")
    funcs, _ = build_reward_functions(cfg.rewards or [], loaded.base_dir)
    funcs = [f for f in funcs if measures_correctness(f)]
    notes = []
    if not funcs:  # format/length rewards only: audit the verifier evaluate uses, which is what accuracy means
        funcs = [TaskScore.from_reward_specs(cfg.rewards)]
        funcs[0].__name__ = "accuracy"
        notes.append("the preset has no correctness reward; checked the verifier `rlr evaluate` uses (accuracy)")
    rows = load_split(cfg, "train")
    rows = rows[:prompts] if prompts is not None else rows
    thinks = "<think>" in (system_prompt(cfg.template) or "") or cfg.template.answer_format == "after_think"
    report = check_gold(rows, funcs, [f.__name__ for f in funcs], cfg.template.answer_format, thinks, max_error_rate)
    report.notes = notes + report.notes
    if not as_json:
        report.render()
    summary = report.to_dict()
    if not report.ok:
        raise GateFailed("reward check --gold: " + "; ".join(report.failures), summary)
    return summary
