"""Human-facing output: rich tables and panels, always on stderr (stdout is kept for --json)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

stderr = Console(stderr=True)
_json_stdout: Any = None  # the real stdout once protect_json_stdout() moved fd 1 to stderr


def protect_json_stdout() -> None:
    """--json promises stdout holds the summary alone: from here on, whatever else writes to fd 1 (a reward's or a
    library's print, a C extension, a subprocess) lands on stderr, and `print_json` writes to the real stdout.
    Only when stdout is the process's fd 1 (not under a capturing test harness)."""
    global _json_stdout
    if _json_stdout is not None:
        return
    try:
        if sys.stdout.fileno() != 1:
            return
    except (AttributeError, OSError, ValueError):
        return
    sys.stdout.flush()
    _json_stdout = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)


def real_stdout() -> Any:
    """Where a child process that prints the --json summary must write (None: inherit this process's stdout)."""
    return _json_stdout


def print_json(payload: Any) -> None:
    stream = _json_stdout or sys.stdout
    stream.write(json.dumps(payload, default=str) + "\n")
    stream.flush()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def print_summary(summary: dict[str, Any], title: str) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in summary.items():
        if key.startswith("_"):
            continue
        table.add_row(key, _fmt(value))
    stderr.print(table)


# TRL fields rlr derives from its own keys rather than copying from rl.trainer.
DERIVED_RL_FIELDS = {"steps_per_generation": "rl.updates_per_generation", "reward_weights": "rewards"}


def print_validation(loaded: Any, report: dict[str, Any], as_json: bool) -> None:
    """What `rlr validate` / `--dry-run` show: resolved config, TRL config per stage, device, bundle fields."""
    import yaml

    from rlr.config.coerce import to_dict

    resolved = to_dict(loaded.cfg)
    payload = {
        "preset": str(loaded.path),
        "config": resolved,
        "algorithm": {"name": loaded.cfg.rl.algorithm, "bundle_trainer_fields": loaded.bundle.get("trainer", {})},
        "device": report["device"],
        "trl": report["trl"],
    }
    if "estimate" in report:
        payload["estimate"] = report["estimate"]
    if "skipped" in report:
        payload["skipped"] = report["skipped"]
    if as_json:
        print_json(payload)  # the CLI's stdout contract
        return
    stderr.rule(f"resolved config: {loaded.path}")
    stderr.print(yaml.safe_dump(resolved, sort_keys=False), highlight=False, markup=False)
    for stage, kwargs in report["trl"].items():
        table = Table(title=f"TRL config for {stage} (non-default fields)", title_justify="left")
        table.add_column("field")
        table.add_column("value")
        table.add_column("set by")
        section = "sft.trainer" if stage == "sft" else "rl.trainer"
        for k, v in sorted(kwargs.items()):
            # the file (or bundle, or "command line") that set the key; everything else is rlr's default
            origin = loaded.origins.get(f"{section}.{k}")
            if origin is None and stage == "rl" and k in DERIVED_RL_FIELDS:
                key = DERIVED_RL_FIELDS[k]  # set through an rlr key, named with where that key came from
                origin = f"{key} ({loaded.origins[key]})" if key in loaded.origins else key
            table.add_row(k, _fmt(v), origin or "rlr")
        stderr.print(table)
    d = report["device"]
    stderr.print(f"device: {d['device']} ({d['name']}), dtype {d['dtype']}, bf16={d['bf16']}, use_cpu={d['use_cpu']}")
    if "estimate" in report:
        stderr.rule("memory / time estimate (rlr estimate)")
        if "error" in report["estimate"]:
            stderr.print(f"no estimate: {report['estimate']['error']}", highlight=False, markup=False)
        else:
            from rlr.estimate.show import print_estimate

            print_estimate(report["estimate"])
    for reason in report.get("skipped", {}).values():
        stderr.print(f"note: {reason}", highlight=False, markup=False)
    stderr.print("[green]config OK[/green]")
