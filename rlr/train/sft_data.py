"""Prepared rows -> the prompt/completion dataset TRL's SFTTrainer takes.

The prompt is kept exactly as prepare-data rendered it (chat messages, or a plain string when template.chat is
false), because RL and evaluation generate from that very prompt: SFT must teach the model to continue it, not
a variant of it. The target is the row's worked `solution`, as an assistant message (conversational format, so
the tokenizer's chat template adds the end-of-turn token the model must learn to stop on) or as plain text
(TRL appends the EOS token then).
"""

from __future__ import annotations

import json
from typing import Any

from rlr.errors import UserError

SOURCES_WITH_SOLUTIONS = ("task:",)  # procedural tasks always write a solution (with trace: true, a worked one)


def missing_solution_fix(cfg: Any, split: str = "train") -> str:
    """Name the data.<split> entries that can be given a solution column, so the message says what to set."""
    keys = [f"data.{split}[{i}].solution" for i, src in enumerate(getattr(cfg.data, split))
            if src.solution is None and not src.source.startswith(SOURCES_WITH_SOLUTIONS)]
    where = f"set {' / '.join(keys)}" if keys else f"set data.{split}[i].solution"
    return (f"{where} to the column holding worked solutions, or use a source with worked solutions "
            "(e.g. task:arithmetic with trace: true), then rerun `rlr prepare-data <preset> --overwrite`")


def sft_dataset(rows: Any, cfg: Any, split: str = "train", tools: list[dict[str, Any]] | None = None) -> Any:
    """`prompt`/`completion` columns in TRL's (conversational or standard) prompt-completion format; `tools` (JSON
    schemas) become TRL's `tools` column, so the chat template shows them in the prompt as it will during RL."""
    if len(rows) == 0:
        raise UserError(f"run '{cfg.run.name}' has no {split} rows; add data.{split} sources and rerun "
                        "`rlr prepare-data <preset> --overwrite`")
    if "solution" not in rows.column_names:
        raise UserError(f"the prepared {split} split has no `solution` column (the SFT target); "
                        f"{missing_solution_fix(cfg, split)}")
    solutions = rows["solution"]
    missing = sum(1 for s in solutions if not isinstance(s, str) or not s.strip())
    if missing:
        raise UserError(f"{missing} of {len(rows)} {split} rows have no `solution` (the SFT target); "
                        f"{missing_solution_fix(cfg, split)}")
    conversational = isinstance(rows[0]["prompt"], list)

    def to_pair(row: dict[str, Any]) -> dict[str, Any]:
        if conversational:
            pair = {"prompt": row["prompt"], "completion": [{"role": "assistant", "content": row["solution"]}]}
            return {**pair, "tools": json.dumps(tools)} if tools else pair
        return {"prompt": row["prompt"], "completion": row["solution"]}

    return rows.map(to_pair, remove_columns=rows.column_names)


def is_conversational(dataset: Any) -> bool:
    return len(dataset) > 0 and isinstance(dataset[0]["prompt"], list)


def check_chat_template(tokenizer: Any, dataset: Any, model_name: str) -> None:
    """Chat-formatted rows need a chat template; without one TRL fails deep inside tokenization."""
    if is_conversational(dataset) and not getattr(tokenizer, "chat_template", None):
        raise UserError(f"the tokenizer of '{model_name}' has no chat template; set model.chat_template (a Jinja "
                        "string or .jinja file), or set template.chat=false and rerun `rlr prepare-data --overwrite`")
