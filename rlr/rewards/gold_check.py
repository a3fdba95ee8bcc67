"""`rlr rewards check PRESET --gold`: audit the verifier on the data's own references before any training.

Each row's reference, written as a completion that follows the template, must score 1 with every correctness
reward (else the reward pays nothing for the right answer: a false negative), and another row's reference, a
different answer, scored against this row must score 0 (else the reward pays for a wrong answer: a false
positive, a reward hack). Both catch what sampling a weak model cannot: an answer column holding whole solutions,
an extractor that reads the wrong region, a template asking for a format the reward does not read, a reward that
pays whenever the gold cannot be parsed (open-r1 PR #566). Rows whose gold the reward cannot read (it returns None)
are counted apart: TRL skips them in training, so they cost data, not correctness.

The reference of a row: its `solution` for code rows (a ```python block is added when missing) and procedural
tasks (their own worked solution, in the format their verifier reads); otherwise its `answer` (its final answer
when the column holds a passage: a newline or over 12 words), written in the template's answer format
(`\\boxed{}`, `<answer>` tags, or plain), after a `<think>` block when the system prompt asks for one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlr.rewards.code import row_tests
from rlr.rewards.extract import extract_answer
from rlr.rewards.verifiers import verifier_kind

_EXAMPLES = 3
_PASSAGE_WORDS = 12
_PARTNER_SEARCH = 64  # rows looked at for a partner with a different reference before giving up


@dataclass
class GoldCase:
    """One disagreement: row `row` (its gold) scored `score` on `completion` (its own or row `source`'s reference)."""

    row: int
    source: int
    gold: str
    completion: str
    score: float


@dataclass
class GoldResult:
    """One reward's audit: false negatives over the rows it scored on their own reference, false positives over
    the rows it scored on another row's reference."""

    name: str
    own_scored: int = 0
    other_scored: int = 0
    false_negatives: list[GoldCase] = field(default_factory=list)
    false_positives: list[GoldCase] = field(default_factory=list)
    gold_unparseable: int = 0  # rows whose own reference scored None: the reward cannot read the gold
    error: str | None = None

    @property
    def fn_rate(self) -> float | None:
        return len(self.false_negatives) / self.own_scored if self.own_scored else None

    @property
    def fp_rate(self) -> float | None:
        return len(self.false_positives) / self.other_scored if self.other_scored else None

    def failures(self, max_error_rate: float) -> list[str]:
        out = []
        if self.error:
            out.append(f"{self.name} raised {self.error}")
        elif not self.own_scored:
            out.append(f"{self.name} scored no row (every gold unreadable or missing)")
        for label, rate in (("false-negative", self.fn_rate), ("false-positive", self.fp_rate)):
            if rate is not None and rate > max_error_rate:
                out.append(f"{self.name} {label} rate {rate:.1%} > {max_error_rate:.1%}")
        return out

    def to_dict(self) -> dict[str, Any]:
        cases = lambda xs: [vars(c) for c in xs[:_EXAMPLES]]  # noqa: E731
        return {"own_scored": self.own_scored, "other_scored": self.other_scored,
                "false_negatives": len(self.false_negatives), "false_positives": len(self.false_positives),
                "fn_rate": self.fn_rate, "fp_rate": self.fp_rate, "gold_unparseable": self.gold_unparseable,
                "error": self.error, "fn_examples": cases(self.false_negatives),
                "fp_examples": cases(self.false_positives)}


@dataclass
class GoldReport:
    rows: int
    results: list[GoldResult]
    max_error_rate: float
    no_reference: int = 0  # rows with nothing to write as a reference (a code row without a solution)
    no_partner: int = 0  # rows for which no other row has a different reference (no false-positive check)
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        return [f for r in self.results for f in r.failures(self.max_error_rate)]

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "mode": "gold", "rows": self.rows, "max_error_rate": self.max_error_rate,
                "no_reference": self.no_reference, "no_partner": self.no_partner, "notes": self.notes,
                "failures": self.failures, "rewards": {r.name: r.to_dict() for r in self.results}}

    def render(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.table import Table

        console = console or Console(stderr=True)
        table = Table(title=f"gold check: {self.rows} rows (own reference must score 1, another row's 0)")
        for column in ("reward", "scored", "false neg.", "false pos.", "gold unreadable"):
            table.add_column(column, justify="left" if column == "reward" else "right")
        for r in self.results:
            rate = lambda x: "-" if x is None else f"{x:.1%}"  # noqa: E731
            table.add_row(r.name, str(r.own_scored), f"{rate(r.fn_rate)} ({len(r.false_negatives)})",
                          f"{rate(r.fp_rate)} ({len(r.false_positives)})", str(r.gold_unparseable))
        console.print(table)
        for r in self.results:
            for label, cases in (("false negative", r.false_negatives), ("false positive", r.false_positives)):
                for c in cases[:_EXAMPLES]:
                    whose = "its own reference" if c.source == c.row else f"row {c.source}'s reference"
                    console.print(f"  {r.name} {label}: row {c.row} gold {_short(c.gold)} scored {c.score:g} on "
                                  f"{whose} {_short(c.completion)}", markup=False, highlight=False, soft_wrap=True)
        for note in self.notes:
            console.print(f"[yellow]note:[/yellow] {note}")


def _short(text: str, limit: int = 70) -> str:
    text = repr(str(text))
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def is_code_row(row: dict[str, Any]) -> bool:
    return verifier_kind(row.get("task")).judges_code or row_tests(row.get("tests"), row.get("meta")) is not None


def reference_completion(row: dict[str, Any], answer_format: str, thinks: bool) -> str | None:
    """The row's reference written as a completion that follows the template; None when there is none."""
    solution = row.get("solution")
    if is_code_row(row):
        if not isinstance(solution, str) or not solution.strip():
            return None
        return solution if "```" in solution else f"```python\n{solution.rstrip()}\n```"
    if not verifier_kind(row.get("task")).needs_answer and isinstance(solution, str) and solution.strip():
        return solution  # a procedural task's own solution is in the format its verifier reads
    answer = row.get("answer")
    if answer is None or not str(answer).strip():
        return None
    answer = str(answer).strip()
    if "\n" in answer or len(answer.split()) > _PASSAGE_WORDS:
        # A gold that reads as a passage (an answer column holding whole solutions): a model writes its final
        # answer, not the passage, so that is the reference; written whole it would match itself whatever the reward
        answer = extract_answer(answer) or answer
    body = {"boxed": f"\\boxed{{{answer}}}", "answer_tag": f"<answer>{answer}</answer>"}.get(answer_format, answer)
    return f"<think>\nThe reference answer.\n</think>\n{body}" if thinks else body


def _partners(keys: list[str | None]) -> list[int | None]:
    """For each row, the next row (cyclically) whose reference differs from its own: its false-positive probe."""
    n = len(keys)
    out: list[int | None] = []
    for i, key in enumerate(keys):
        partner = None
        if key is not None:
            for step in range(1, min(n, _PARTNER_SEARCH + 1)):
                j = (i + step) % n
                if keys[j] is not None and keys[j] != key:
                    partner = j
                    break
        out.append(partner)
    return out


def _key(row: dict[str, Any], reference: str | None) -> str | None:
    """What makes two references different answers, spacing and case aside: the code for code rows, the answer
    column for procedural tasks (two sums with the same result are no probe for each other), else the written
    reference (two gold passages that end in the same answer are none either)."""
    if reference is None:
        return None
    if not is_code_row(row) and not verifier_kind(row.get("task")).needs_answer and row.get("answer") is not None:
        reference = str(row["answer"])
    return " ".join(reference.split()).lower()


def check_gold(rows: Sequence[dict[str, Any]], reward_funcs: Sequence[Callable], names: Sequence[str],
               answer_format: str, thinks: bool, max_error_rate: float = 0.02) -> GoldReport:
    """Score each row's own reference and another row's with every reward in `reward_funcs` (the correctness ones)."""
    from rlr.rewards.doctor import _flatten

    references = [reference_completion(dict(r), answer_format, thinks) for r in rows]
    partners = _partners([_key(dict(r), ref) for r, ref in zip(rows, references, strict=True)])
    report = GoldReport(rows=len(rows), results=[], max_error_rate=max_error_rate,
                        no_reference=sum(ref is None for ref in references),
                        no_partner=sum(ref is not None and p is None for ref, p in zip(references, partners,
                                                                                      strict=True)))
    # One call per reward: [own, other] per row, the other scored against this row's gold, tests and meta.
    probes: list[tuple[int, int]] = []  # (row, whose reference)
    kept_rows, completions = [], []
    for i, ref in enumerate(references):
        if ref is None:
            continue
        samples = [ref]
        probes.append((i, i))
        if partners[i] is not None:
            samples.append(references[partners[i]])
            probes.append((i, partners[i]))
        kept_rows.append(rows[i])
        completions.append(samples)
    texts, columns = _flatten(kept_rows, completions)
    for func, name in zip(reward_funcs, names, strict=True):
        result = GoldResult(name=name)
        report.results.append(result)
        try:
            scores = list(func(completions=list(texts), **columns)) if texts else []
            if len(scores) != len(texts):
                raise ValueError(f"returned {len(scores)} scores for {len(texts)} completions")
        except Exception as e:  # noqa: BLE001 - a reward that raises is a finding, reported with the others
            result.error = f"{type(e).__name__}: {e}"
            continue
        unreadable: set[int] = set()
        for (row, source), text, score in zip(probes, texts, scores, strict=True):
            if row in unreadable:
                continue
            if score is None:
                unreadable.add(row)
                if source == row:
                    result.gold_unparseable += 1
                continue
            case = GoldCase(row=row, source=source, gold=str(rows[row].get("answer")), completion=text,
                            score=float(score))
            if source == row:
                result.own_scored += 1
                if float(score) < 1.0:
                    result.false_negatives.append(case)
            else:
                result.other_scored += 1
                if float(score) > 0.0:
                    result.false_positives.append(case)
    if report.no_reference:
        report.notes.append(f"{report.no_reference} row(s) have no reference to score (code rows need a solution "
                            "column: set data.train[i].solution)")
    if report.no_partner:
        report.notes.append(f"{report.no_partner} row(s) have no other row with a different reference: no "
                            "false-positive check for them")
    return report

