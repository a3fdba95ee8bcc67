"""Prepared rows -> the prompt/completion dataset TRL's SFTTrainer takes.

The prompt is kept exactly as prepare-data rendered it (chat messages, or a plain string when template.chat is
false), because RL and evaluation generate from that very prompt: SFT must teach the model to continue it, not
a variant of it. The target is the row's worked `solution`, as an assistant message (conversational format, so
the tokenizer's chat template adds the end-of-turn token the model must learn to stop on) or as plain text
(TRL appends the EOS token then). A row whose meta carries `solution_turns` (a tool-use trace: assistant tool
calls, tool replies, the final answer) is trained on those messages instead, and by default only on the model's
own turns: the tool replies are in the context but not in the loss, as in RL (`model_turns_only`).
`sft.train_on_tool_replies: true` keeps them in the loss (TRL's prompt-completion SFT masks the prompt only): the
tiny model learned to copy the operands and the reply sooner that way (presets/agentic/tiny-calculator.yaml).
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
            turns = solution_turns(row)
            pair = {"prompt": row["prompt"],
                    "completion": turns or [{"role": "assistant", "content": row["solution"]}]}
            return {**pair, "tools": json.dumps(tools)} if tools else pair
        return {"prompt": row["prompt"], "completion": row["solution"]}

    return rows.map(to_pair, remove_columns=rows.column_names)


def solution_turns(row: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The row's tool-use trace (meta["solution_turns"], TRL's message format), or None for a one-message target."""
    meta = row.get("meta")
    meta = json.loads(meta) if isinstance(meta, str) and meta else meta
    turns = meta.get("solution_turns") if isinstance(meta, dict) else None
    return turns or None


def is_conversational(dataset: Any) -> bool:
    return len(dataset) > 0 and isinstance(dataset[0]["prompt"], list)


def check_chat_template(tokenizer: Any, dataset: Any, model_name: str) -> None:
    """Chat-formatted rows need a chat template; without one TRL fails deep inside tokenization."""
    if is_conversational(dataset) and not getattr(tokenizer, "chat_template", None):
        raise UserError(f"the tokenizer of '{model_name}' has no chat template; set model.chat_template (a Jinja "
                        "string or .jinja file), or set template.chat=false and rerun `rlr prepare-data --overwrite`")


def model_turns_only(dataset: Any, tokenizer: Any) -> Any:
    """`dataset` as is when no completion holds a tool turn; else pre-tokenized rows (`input_ids`, `completion_mask`)
    whose mask covers the assistant turns only, so SFT never trains on what a tool replied.

    The boundaries come from rendering the conversation turn by turn with the model's own chat template (as TRL's
    tool loop builds a rollout), so this holds for any template whose rendering of a conversation's beginning is a
    prefix of the whole; one that is not is a UserError naming the template.
    """
    if len(dataset) == 0 or "completion" not in dataset.column_names or not any(
            isinstance(c, list) and any(m.get("role") == "tool" for m in c) for c in dataset["completion"]):
        return dataset

    def tokenize(row: dict[str, Any]) -> dict[str, Any]:
        tools = json.loads(row["tools"]) if isinstance(row.get("tools"), str) else row.get("tools")
        messages = [_clean(m) for m in row["prompt"] + row["completion"]]
        first = len(row["prompt"])

        def render(upto: int, generation_prompt: bool) -> list[int]:
            return list(tokenizer.apply_chat_template(messages[:upto], tools=tools, tokenize=True, return_dict=False,
                                                      add_generation_prompt=generation_prompt))

        ids = render(len(messages), False)
        mask = [0] * len(ids)
        for k in range(first, len(messages)):
            if messages[k]["role"] != "assistant":
                continue
            start, end = render(k, True), render(k + 1, False)
            if ids[:len(start)] != start or ids[:len(end)] != end:
                raise UserError("the chat template renders a conversation's first turns differently from the whole "
                                "conversation, so SFT cannot tell the model's turns from the tool replies; use a "
                                "template that renders turn by turn (e.g. ChatML) in model.chat_template")
            mask[len(start):len(end)] = [1] * (len(end) - len(start))
        return {"input_ids": ids, "completion_mask": mask}

    return dataset.map(tokenize, remove_columns=dataset.column_names)


def _clean(message: dict[str, Any]) -> dict[str, Any]:
    """A message as written: Arrow gives every message every key any message had (None where it had none)."""
    return {k: v for k, v in message.items() if v is not None}
