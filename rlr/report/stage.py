"""`rlr report`: PNG plots and a markdown summary of one run directory, or several overlaid for comparison.

The report only reads what the stages left in `runs/<name>/` and is tolerant by design: runs are inspected while
training is still going (a half-written last line of metrics.jsonl is skipped), different algorithms and TRL
versions log different keys (panels without data are skipped and named in report.md), and evaluation results are
found by looking for any `results.json` under `eval/`, whether one file compares several models or each model has
its own. Only a run directory that does not exist or holds no stage output at all is an error (exit 2).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlr.errors import UserError
from rlr.files import atomic_write_text, read_json
from rlr.paths import EVAL_STAGE, METRICS_FILE, RESULTS_FILE, manifest_path, stage_path
from rlr.runs import STAGES
from rlr.trl_internals import (
    LOG_LOSS,
    LOG_MEAN_LENGTH,
    LOG_REWARD,
    LOG_SFT_TOKEN_ACCURACY,
    LOG_TOOL_CALL_FREQUENCY,
    LOG_TOOL_FAILURE_FREQUENCY,
    reward_name_of,
)

log = logging.getLogger(__name__)

# the last four: tool-calling episodes' means (rlr/evaluate/tool_rollout.py), present only for a preset with tools
EVAL_COLUMNS = ("num_problems", "pass@", "maj@", "avg@n", "greedy_accuracy", "mean_score", "mean_length",
                "truncation_rate", "format_compliance", "tool_calls_per_episode", "tool_error_rate",
                "turns_per_episode", "env_reward")


@dataclass
class RunData:
    """Everything the report needs from one `runs/<name>/` directory."""

    name: str
    path: Path
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage -> manifest.json
    metrics: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # stage -> metrics.jsonl records
    eval_rows: list[dict[str, Any]] = field(default_factory=list)  # {"label", "benchmark", "metrics"}
    bad_lines: int = 0


def _read_jsonl(path: Path) -> tuple[list[dict[str, Any]], int]:
    records, bad = [], 0
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            bad += 1  # a stage still writing leaves a partial last line
            continue
        if isinstance(record, dict):
            records.append(record)
    return records, bad


def _benchmarks(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-benchmark metrics of one model: `benchmarks`, else `summarize()`'s `per_task`, else flat metrics."""
    for key in ("benchmarks", "per_task"):
        if isinstance(entry.get(key), dict):
            return {str(b): m for b, m in entry[key].items() if isinstance(m, dict)}
    if any(isinstance(v, (int, float)) and "@" in k for k, v in entry.items()):
        return {str(entry.get("benchmark", "all")): entry}
    return {}


def _status(stage_dir: Path) -> str | None:
    """The stage's manifest status; None when it has no readable manifest (files from elsewhere are taken as is)."""
    try:
        manifest = read_json(manifest_path(stage_dir))
    except (OSError, json.JSONDecodeError):
        return None
    return manifest.get("status") if isinstance(manifest, dict) else None


def _eval_rows(eval_dir: Path) -> list[dict[str, Any]]:
    """Rows of (model label, benchmark, metrics) from every results.json under eval/; a combined file wins over a
    per-model file for the same label, since the evaluate stage writes the combined one last."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    files = sorted(eval_dir.rglob(RESULTS_FILE), key=lambda p: (-len(p.relative_to(eval_dir).parts), str(p)))
    for path in files:
        try:
            doc = read_json(path)
        except (OSError, json.JSONDecodeError) as e:
            log.warning("skipping %s: %s", path, e)
            continue
        if not isinstance(doc, dict):
            continue
        rel = path.parent.relative_to(eval_dir)
        if isinstance(doc.get("table"), dict):  # the comparison the evaluate stage rebuilds: label -> bench -> metrics
            entries = {str(label): {"benchmarks": b} for label, b in doc["table"].items() if isinstance(b, dict)}
        elif isinstance(doc.get("models"), dict):
            entries = {str(label): e for label, e in doc["models"].items() if isinstance(e, dict)}
        else:
            if _status(path.parent) not in (None, "complete"):
                continue  # written, but its stage never finished (killed between the results and the manifest)
            model = doc.get("model")
            default = str(rel) if rel.parts else Path(model).name if isinstance(model, str) else "model"
            entries = {str(doc.get("label") or default): doc}
        for label, entry in entries.items():
            for bench, metrics in _benchmarks(entry).items():
                found[(label, bench)] = metrics
    rows = [{"label": label, "benchmark": bench, "metrics": m} for (label, bench), m in found.items()]
    return sorted(rows, key=lambda r: (_pipeline_order(r["label"]), r["label"], r["benchmark"]))


def _pipeline_order(label: str) -> int:
    """base, sft, rl, export first and in that order, so the bars and tables read as before -> after."""
    order = ("base", "sft", "rl", "export")
    return order.index(label) if label in order else len(order)


def load_run(path: Path) -> RunData:
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: no such run directory; pass runs/<name> (the directory holding sft/, rl/, eval/)")
    run = RunData(name=path.resolve().name, path=path)
    # Other folders with a manifest count as stages only inside a run: a folder of models or exports is not one.
    extra = sorted(p for p in path.iterdir()
                   if p.is_dir() and p.name not in STAGES and not p.name.startswith(".")
                   and manifest_path(p).is_file())  # .export.tmp-<pid>: a killed export's leftovers
    stage_dirs = [path / s for s in STAGES] + (extra if any((path / s).is_dir() for s in STAGES) else [])
    for stage_dir in stage_dirs:
        # evaluate keeps one stage per model (eval/<label>/manifest.json), so look one level down as well
        nested = sorted(stage_dir.glob("*/manifest.json")) if stage_dir.is_dir() else []
        for manifest in [manifest_path(stage_dir), *nested]:
            if manifest.is_file():
                try:
                    run.manifests[manifest.parent.relative_to(path).as_posix()] = read_json(manifest)
                except (OSError, json.JSONDecodeError) as e:
                    log.warning("skipping %s: %s", manifest, e)
        if (stage_dir / METRICS_FILE).is_file():
            run.metrics[stage_dir.name], bad = _read_jsonl(stage_dir / METRICS_FILE)
            run.bad_lines += bad
    if stage_path(path, EVAL_STAGE).is_dir():
        run.eval_rows = _eval_rows(stage_path(path, EVAL_STAGE))
    if not (run.manifests or run.metrics or run.eval_rows):
        hint = ""
        if manifest_path(path).is_file() or (path / METRICS_FILE).is_file():
            hint = f" (this looks like a stage directory: pass its parent {path.parent})"
        raise UserError(f"{path}: no stage outputs (no manifest.json, metrics.jsonl or eval results.json in "
                        f"{', '.join(STAGES)}){hint}")
    return run


def _unique_names(runs: list[RunData]) -> None:
    """Runs from different output dirs may share a name; the legend must still tell them apart."""
    seen: dict[str, int] = {}
    for run in runs:
        seen[run.name] = seen.get(run.name, 0) + 1
    for run in runs:
        if seen[run.name] > 1:
            run.name = f"{run.path.resolve().parent.name}/{run.name}"


def _wall_time(manifest: dict[str, Any]) -> str:
    seconds = manifest.get("duration_s")
    if not isinstance(seconds, (int, float)) and manifest.get("status") == "running" and manifest.get("started_at"):
        try:
            start = dt.datetime.fromisoformat(str(manifest["started_at"]))
            seconds = (dt.datetime.now(dt.timezone.utc) - start).total_seconds()
            return f"{_duration(seconds)} so far"
        except (TypeError, ValueError):
            return "?"
    return _duration(seconds) if isinstance(seconds, (int, float)) else "?"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "–" if value is None else str(value)
    if isinstance(value, int) or (math.isfinite(value) and value == int(value) and abs(value) >= 10):
        return f"{int(value)}"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _first_last(records: list[dict[str, Any]], key: str) -> str | None:
    from rlr.report.plots import series

    steps, values = series(records, key)
    if not steps:
        return None
    return f"{_fmt(values[0])} (step {_fmt(steps[0])}) -> {_fmt(values[-1])} (step {_fmt(steps[-1])})"


def _eval_columns(rows: list[dict[str, Any]]) -> list[str]:
    present = list(dict.fromkeys(m for row in rows for m, v in row["metrics"].items()
                                 if isinstance(v, (int, float)) and not isinstance(v, bool)))
    columns: list[str] = []
    for prefix in EVAL_COLUMNS:
        columns += sorted((m for m in present if m == prefix or (prefix.endswith("@") and m.startswith(prefix)
                           and m[len(prefix):].isdigit())), key=lambda m: (len(m), m))
    return list(dict.fromkeys(columns))


def _eval_table(rows: list[dict[str, Any]]) -> list[str]:
    columns = _eval_columns(rows)
    if not columns:
        return ["No numeric eval metrics found under eval/."]
    lines = ["| model | benchmark | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for row in sorted(rows, key=lambda r: r["benchmark"]):  # stable: models keep base -> sft -> rl order
        cells = []
        for column in columns:
            value, ci = row["metrics"].get(column), row["metrics"].get(f"{column}_ci")
            text = _fmt(value)
            if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(c, (int, float)) for c in ci):
                text += f" [{_fmt(ci[0])}, {_fmt(ci[1])}]"
            cells.append(text)
        lines.append(f"| {row['label']} | {row['benchmark']} | " + " | ".join(cells) + " |")
    return lines


def _run_section(run: RunData) -> list[str]:
    lines = [f"## {run.name}", "", f"`{run.path}`", ""]
    if run.manifests:
        lines += ["| stage | status | wall time | finished |", "|---|---|---|---|"]
        for stage, manifest in run.manifests.items():
            lines.append(f"| {stage} | {manifest.get('status', '?')} | {_wall_time(manifest)} | "
                         f"{manifest.get('finished_at') or '–'} |")
        durations = [m["duration_s"] for m in run.manifests.values() if isinstance(m.get("duration_s"), (int, float))]
        if len(durations) > 1:
            lines.append(f"| **total** | | {_duration(sum(durations))} | |")
        lines.append("")
    rl = run.metrics.get("rl", [])
    per_function = sorted({k for r in rl for k in r if reward_name_of(k) is not None})
    reward_keys = [LOG_REWARD, "accuracy", *per_function]  # accuracy: rlr's own (rlr/train/rl_logging.py)
    for key in [*reward_keys, LOG_MEAN_LENGTH, LOG_TOOL_CALL_FREQUENCY, LOG_TOOL_FAILURE_FREQUENCY]:
        summary = _first_last(rl, key)
        if summary:
            lines.append(f"- rl `{key}`: {summary}")
    fired = [f"step {r['step']} {r['alarm']}" for r in rl if r.get("alarm")]  # written by rlr/train/alarms.py
    if fired:
        lines.append(f"- rl alarms fired ({len(fired)} steps): {', '.join(fired[:20])}"
                     + (" ..." if len(fired) > 20 else ""))
    for key in (LOG_LOSS, LOG_SFT_TOKEN_ACCURACY):
        summary = _first_last(run.metrics.get("sft", []), key)
        if summary:
            lines.append(f"- sft `{key}`: {summary}")
    if run.bad_lines:
        lines.append(f"- skipped {run.bad_lines} unreadable metrics line(s) (a stage may still be writing)")
    if run.eval_rows:
        lines += ["", "Eval (95% bootstrap CI in brackets):", "", *_eval_table(run.eval_rows)]
    return [*lines, ""]


def write_report(run_dirs: list[Path], out: Path | None) -> Path:
    """Write `<out>/report.md` and its PNGs (default out: `<first run>/report/`); returns the report.md path."""
    from rlr.report.plots import FIGURES, SMOOTH_FROM, draw_curves, draw_eval

    if not run_dirs:
        raise UserError("pass at least one run directory, e.g. rlr report runs/<name>")
    runs = [load_run(Path(p)) for p in run_dirs]
    _unique_names(runs)
    out_dir = Path(out) if out is not None else Path(run_dirs[0]) / "report"
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file; pass a directory")
    out_dir.mkdir(parents=True, exist_ok=True)

    lines = ["# rlr report", "", "Runs: " + ", ".join(f"`{r.name}`" for r in runs), "", "## Plots", "",
             f"Curves with {SMOOTH_FROM}+ points are a centred moving average over ~4% of the steps (raw values faint "
             "behind; learning rates unsmoothed).",
             ""]
    skipped: list[str] = []
    drawn_files: set[str] = set()
    no_metrics: dict[str, list[str]] = {}  # stage -> its figures, when no run logged that stage
    for spec in FIGURES:
        stage_runs = {r.name: r.metrics[spec.stage] for r in runs if r.metrics.get(spec.stage)}
        if not stage_runs:
            no_metrics.setdefault(spec.stage, []).append(spec.name)
            continue
        drawn = draw_curves(spec, stage_runs, out_dir)
        skipped += [f"`{spec.name}`: {s}" for s in drawn.skipped]
        drawn_files.add(drawn.file or "")
        if drawn.file:
            lines += [f"### {spec.name}", "", f"Panels: {', '.join(drawn.panels)}", "",
                      f"![{spec.name}]({drawn.file})", ""]
    skipped = [f"{', '.join(f'`{n}`' for n in names)}: no {stage}/metrics.jsonl with records"
               for stage, names in no_metrics.items()] + skipped
    eval_rows = [{**row, "label": row["label"] if len(runs) == 1 else f"{run.name}/{row['label']}"}
                 for run in runs for row in run.eval_rows]
    drawn = draw_eval(eval_rows, out_dir)
    skipped += [f"`eval`: {s}" for s in drawn.skipped]
    drawn_files.add(drawn.file or "")
    if drawn.file:
        lines += ["### eval", "", f"Panels: {', '.join(drawn.panels)}", "", f"![eval]({drawn.file})", ""]
    for stale in {f"{spec.name}.png" for spec in FIGURES} | {"eval.png"}:
        if stale not in drawn_files:  # a plot from an earlier report that this data no longer supports
            (out_dir / stale).unlink(missing_ok=True)
    if skipped:
        lines += ["Skipped (no data):", "", *[f"- {s}" for s in skipped], ""]
    for run in runs:
        lines += _run_section(run)
    path = out_dir / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path
