"""CI gates (`--min bench.metric=value`) and the comparison across evaluated models (`eval/results.json`).

The comparison is rebuilt from every `eval/<label>/results.json` on disk after each evaluate run, not kept in
memory: `rlr pipeline` evaluates `sft` before RL and `rl` after it in two processes, and both rows must show.
Gates are parsed and checked against the benchmark and metric names before any generation, so a typo costs
seconds, not an evaluation.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlr.errors import GateFailed, UserError
from rlr.paths import RESULTS_FILE, manifest_path

SUMMARY_METRICS = ("avg@n", "mean_score", "mean_length", "max_length", "truncation_rate", "format_compliance")


@dataclass(frozen=True)
class Gate:
    benchmark: str
    metric: str
    threshold: float

    @property
    def key(self) -> str:
        return f"{self.benchmark}.{self.metric}"


def metric_names(ks: list[int], greedy: bool) -> list[str]:
    """Every flat metric a gate may name, for the eval settings in force."""
    names = [f"pass@{k}" for k in ks] + [f"maj@{k}" for k in ks] + [f"maj_tie_avg@{k}" for k in ks]
    names += list(SUMMARY_METRICS)
    return [*names, "greedy_accuracy"] if greedy else names


def parse_gates(specs: list[str], benchmarks: list[str], metrics: list[str]) -> list[Gate]:
    """`gsm8k.pass@1=0.5` -> Gate; UserError (exit 2) on a malformed spec or an unknown benchmark/metric."""
    from rlr.config.coerce import suggest

    gates = []
    for spec in specs:
        key, sep, value = spec.rpartition("=")
        bench, dot, metric = key.strip().rpartition(".")  # metric names hold no dots; file stems might
        try:
            threshold = float(value)
        except ValueError:
            threshold = math.nan
        if not sep or not dot or not bench or not metric or not math.isfinite(threshold):
            raise UserError(f"--min {spec!r} is malformed; write benchmark.metric=value, e.g. --min eval.pass@1=0.5")
        if bench not in benchmarks:
            raise UserError(f"--min {spec!r}: benchmark '{bench}' is not evaluated{suggest(bench, benchmarks)}; "
                            f"choose one of {', '.join(benchmarks)}")
        if metric not in metrics:
            raise UserError(f"--min {spec!r}: unknown metric '{metric}'{suggest(metric, metrics)}; choose one of "
                            f"{', '.join(metrics)}")
        gates.append(Gate(bench, metric, threshold))
    return gates


def check_gates(gates: list[Gate], results: dict[str, dict[str, Any]]) -> list[str]:
    """Messages for every (model, gate) that missed; `results` maps label -> that model's results.json."""
    failures = []
    for label, result in results.items():
        for gate in gates:
            value = result["benchmarks"].get(gate.benchmark, {}).get(gate.metric)
            if value is None or value < gate.threshold:
                shown = "missing" if value is None else f"{value:.2f}"
                failures.append(f"{gate.key} = {shown} < {gate.threshold:.2f} for model {label}")
    return failures


def raise_on_failures(failures: list[str], summary: dict[str, Any] | None = None) -> None:
    if failures:
        raise GateFailed("; ".join(failures), summary=summary)


def _flat_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in metrics.items() if k not in ("per_task", "timing")}
    timing = metrics.get("timing") or {}
    if "tokens_per_s" in timing:
        out["tokens_per_s"] = timing["tokens_per_s"]
    return out


def build_comparison(eval_dir: Path) -> dict[str, Any]:
    """Rows = models (every `eval/<label>/results.json`), columns = metric per benchmark."""
    from rlr.runs import now_iso

    table: dict[str, dict[str, dict[str, Any]]] = {}
    models: dict[str, Any] = {}
    benchmarks: list[str] = []
    for path in sorted(eval_dir.glob(f"*/{RESULTS_FILE}")):
        try:
            result = json.loads(path.read_text())
            status = json.loads(manifest_path(path.parent).read_text()).get("status")
        except (OSError, json.JSONDecodeError, AttributeError):
            continue  # a half-written or foreign file must not break the comparison of the others
        if status != "complete":
            continue  # being re-evaluated, or killed before it finished: its old numbers are not its numbers
        label = result.get("label", path.parent.name)
        models[label] = {"model": result.get("model"), "evaluated_at": result.get("evaluated_at"),
                         "generation": result.get("generation")}
        table[label] = {}
        for bench, metrics in (result.get("benchmarks") or {}).items():
            table[label][bench] = _flat_metrics(metrics)
            if bench not in benchmarks:
                benchmarks.append(bench)
    return {"updated_at": now_iso(), "models": models, "benchmarks": benchmarks, "table": table}


def write_comparison(eval_dir: Path) -> dict[str, Any]:
    from rlr.files import atomic_write_json
    from rlr.runs import is_main_process

    comparison = build_comparison(eval_dir)
    if is_main_process():
        atomic_write_json(eval_dir / RESULTS_FILE, comparison)
    return comparison


def _is_headline(metric: str) -> bool:
    """pass@k, maj@k for k > 1 (maj@1 is pass@1), greedy accuracy; avg@n equals pass@1, so it stays in the JSON."""
    if metric.endswith("_ci"):
        return False
    if metric.startswith("maj@"):
        return metric != "maj@1"
    return metric.startswith(("pass@", "greedy_accuracy"))


def headline_columns(comparison: dict[str, Any]) -> list[tuple[str, str]]:
    """(benchmark, metric) pairs for the printed table, in a stable order; `num_problems` first (--limit shows)."""
    columns = []
    for bench in comparison["benchmarks"]:
        names: list[str] = ["num_problems"]
        for row in comparison["table"].values():
            for metric in row.get(bench, {}):
                if _is_headline(metric) and metric not in names:
                    names.append(metric)
        columns.extend((bench, m) for m in names)
    return columns


def _cell(metrics: dict[str, Any], metric: str) -> str:
    value = metrics.get(metric)
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    ci = metrics.get(f"{metric}_ci")
    return f"{value:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else f"{value:.3f}"


def print_comparison(comparison: dict[str, Any]) -> None:
    """Rich table on stderr: one row per model, one column per benchmark metric, 95% CI in brackets."""
    from rich.table import Table

    from rlr.console import stderr

    table = Table(title="rlr evaluate: comparison (95% bootstrap CI over problems)", title_justify="left")
    table.add_column("model", style="bold")
    columns = headline_columns(comparison)
    for bench, metric in columns:
        table.add_column(f"{bench}\n{metric}", justify="right")
    for label, row in comparison["table"].items():
        table.add_row(label, *(_cell(row.get(bench, {}), metric) for bench, metric in columns))
    stderr.print(table)


def summary_rows(comparison: dict[str, Any]) -> list[dict[str, Any]]:
    """The comparison as flat rows for `--json`: {"model": label, "<bench>.<metric>": value, ...}."""
    rows = []
    for label, benches in comparison["table"].items():
        row: dict[str, Any] = {"model": label}
        for bench, metrics in benches.items():
            row.update({f"{bench}.{k}": v for k, v in metrics.items()})
        rows.append(row)
    return rows
