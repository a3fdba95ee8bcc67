"""Core of `rlr rewards check`: run the configured rewards on sample completions before spending GPU hours.

It catches the mistakes that make a GRPO run learn nothing: a reward that is constant over the sample
(zero advantage everywhere), a reward that raises or times out, completions whose answer the extractor
cannot find (the template and the reward disagree on the answer format), and a chat template that already
opens `<think>` (so a format reward that requires the completion to open it can never pay).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlr.rewards.correctness import correctness_stats
from rlr.rewards.extract import extract_answer
from rlr.rewards.verifiers import verifier_kind

_SLOW_S = 10.0  # a reward slower than this over the sample will dominate step time in training
_SHOW = 60  # characters of a completion shown in the table


@dataclass
class DoctorReport:
    """Per-completion scores for each reward, plus warnings. `scores[name][i]` is completion i's score."""

    names: list[str]
    rows: list[dict[str, Any]]  # one per completion: row index, sample index, answer, extracted, text
    scores: dict[str, list[float | None]]
    seconds: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # reward name -> exception text

    @property
    def ok(self) -> bool:
        return not self.warnings

    def zero_std_fraction(self, name: str) -> float | None:
        """Share of prompts whose samples all got the same score: TRL's `frac_reward_zero_std` for this reward.
        GRPO learns only from prompts where it is not the case. None with fewer than 2 samples per prompt."""
        groups: dict[int, list[float]] = {}
        for row, value in zip(self.rows, self.scores[name], strict=True):
            if value is not None:
                groups.setdefault(row["row"], []).append(value)
        sized = [g for g in groups.values() if len(g) > 1]
        return sum(1 for g in sized if max(g) == min(g)) / len(sized) if sized else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary for `--json`."""
        summary = {}
        for name in self.names:
            values = [v for v in self.scores[name] if v is not None]
            summary[name] = {
                "mean": sum(values) / len(values) if values else None,
                "min": min(values, default=None),
                "max": max(values, default=None),
                "zero_std_frac": self.zero_std_fraction(name),
                "seconds": round(self.seconds.get(name, 0.0), 4),
                "error": self.errors.get(name),
            }
        return {
            "ok": self.ok,
            "rewards": summary,
            "completions": [
                {**row, "scores": {n: self.scores[n][i] for n in self.names}} for i, row in enumerate(self.rows)
            ],
            "warnings": self.warnings,
        }

    def to_table(self) -> Any:
        """A rich Table: one line per completion, one column per reward."""
        from rich.table import Table

        table = Table(title="reward check", show_lines=False)
        table.add_column("row", justify="right")
        table.add_column("answer")
        table.add_column("extracted")
        table.add_column("completion", overflow="ellipsis", max_width=_SHOW)
        for name in self.names:
            table.add_column(name, justify="right")
        for i, row in enumerate(self.rows):
            cells = [_fmt(self.scores[name][i]) for name in self.names]
            text = row["completion"].replace("\n", " ")
            table.add_row(
                f"{row['row']}.{row['sample']}", str(row["answer"]), str(row["extracted"]), text[:_SHOW], *cells
            )
        return table

    def render(self, console: Any = None) -> None:
        """Print the table and the warnings to stderr (or the given rich Console)."""
        from rich.console import Console

        console = console or Console(stderr=True)
        console.print(self.to_table())
        for warning in self.warnings:
            console.print(f"[yellow]warning:[/yellow] {warning}")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _flatten(rows: Sequence[dict], completions: Sequence[Sequence[str]]) -> tuple[list[str], dict[str, list]]:
    """TRL-style columns: one entry per completion, row columns repeated, `prompts` as TRL passes them."""
    texts: list[str] = []
    columns: dict[str, list] = {"prompts": []}
    keys = sorted({k for row in rows for k in row if k not in ("prompt", "completion", "completion_ids")})
    for key in keys:
        columns[key] = []
    for row, samples in zip(rows, completions, strict=True):
        for text in samples:
            texts.append(text)
            columns["prompts"].append(row.get("prompt", ""))
            for key in keys:
                columns[key].append(row.get(key))
    return texts, columns


def check_rewards(
    rows: Sequence[dict[str, Any]],
    completions: Sequence[Sequence[str]],
    reward_funcs: Sequence[Callable],
    names: Sequence[str],
) -> DoctorReport:
    """Run each reward on every (row, completion) pair and collect scores and warnings.

    `completions[i]` are sample completions for `rows[i]` (prepared-data rows: prompt, answer, task, meta...).
    """
    texts, columns = _flatten(rows, completions)
    meta_rows = [(r, s) for r, samples in enumerate(completions) for s in range(len(samples))]
    extracted = [extract_answer(t) for t in texts]
    report = DoctorReport(
        names=list(names),
        rows=[
            {
                "row": r,
                "sample": s,
                "answer": columns.get("answer", [None] * len(texts))[k],
                "extracted": extracted[k],
                "completion": texts[k],
            }
            for k, (r, s) in enumerate(meta_rows)
        ],
        scores={},
        seconds={},
    )
    for func, name in zip(reward_funcs, names, strict=True):
        before = correctness_stats()
        start = time.monotonic()
        try:
            values = list(func(completions=list(texts), **columns))
            if len(values) != len(texts):
                raise ValueError(f"returned {len(values)} scores for {len(texts)} completions")
            scores = [None if v is None else float(v) for v in values]
        except Exception as e:
            report.errors[name] = f"{type(e).__name__}: {e}"
            report.warnings.append(f"{name}: raised {type(e).__name__}: {e}")
            scores = [None] * len(texts)
        report.seconds[name] = time.monotonic() - start
        report.scores[name] = scores
        _reward_warnings(report, name, scores, before)
    _extractor_warnings(report, texts, extracted, columns)
    return report


def _reward_warnings(report: DoctorReport, name: str, scores: list[float | None], before: dict[str, int]) -> None:
    after = correctness_stats()
    timeouts = after.get("timeout", 0) - before.get("timeout", 0)
    errors = after.get("error", 0) - before.get("error", 0)
    if timeouts:
        report.warnings.append(f"{name}: {timeouts} answer(s) timed out in math-verify and scored 0")
    if errors:
        report.warnings.append(f"{name}: {errors} answer(s) could not be parsed/verified and scored 0")
    unreadable = after.get("gold_unparseable", 0) - before.get("gold_unparseable", 0)
    if unreadable:
        report.warnings.append(f"{name}: {unreadable} completion(s) belong to rows whose ground truth math-verify "
                               "cannot read; they are skipped (None): check the answer column")
    if report.seconds[name] > _SLOW_S:
        report.warnings.append(f"{name}: took {report.seconds[name]:.1f}s on {len(scores)} completions (slow)")
    values = [v for v in scores if v is not None]
    if name in report.errors:
        return
    if any(not math.isfinite(v) for v in values):
        report.warnings.append(f"{name}: returned NaN or infinite scores")
    elif len(values) > 1 and max(values) == min(values):
        report.warnings.append(
            f"{name}: constant {values[0]:g} over all {len(values)} completions: no learning signal from it "
            "(check the answer format the template asks for and what the reward expects)"
        )
    elif not values and scores:
        report.warnings.append(f"{name}: returned None for every completion (missing column?)")
    else:
        flat = report.zero_std_fraction(name)
        if flat == 1.0:
            report.warnings.append(
                f"{name}: varies between prompts but never within a prompt's samples: GRPO advantages from it "
                "are all zero (the task may be too easy or too hard for this model)"
            )


def _extractor_warnings(report: DoctorReport, texts: list[str], extracted: list[str | None], columns: dict) -> None:
    missing = [i for i, e in enumerate(extracted) if e is None]
    tasks = columns.get("task") or ["math"] * len(texts)
    missing = [i for i in missing if verifier_kind(tasks[i]).needs_answer]
    if missing:
        example = json.dumps(texts[missing[0]][-80:])
        report.warnings.append(
            f"no final answer found in {len(missing)} of {len(texts)} completions (e.g. ...{example}); "
            "ask for \\boxed{...} or <answer>...</answer> in the template"
        )


def chat_template_inserts_think(tokenizer: Any) -> bool:
    """True when the tokenizer's generation prompt already opens `<think>` (Qwen3, R1 distills): completions
    then start inside the reasoning and contain only `</think>`."""
    messages = [{"role": "user", "content": "What is 1+1?"}]
    try:
        with_prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        without = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    except Exception:  # no chat template: nothing is inserted
        return False
    generation_prompt = with_prompt[len(without) :] if with_prompt.startswith(without) else with_prompt
    head, sep, tail = generation_prompt.rpartition("<think>")
    return bool(sep) and "</think>" not in tail
