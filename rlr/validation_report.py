"""What `rlr validate` and `--dry-run` print: the resolved config, the TRL config per stage with who set each field,
the device and the estimate. CLI layer: it sits above the stages whose reports it shows (rlr.console, which every
layer prints through, stays below them)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from rlr.console import format_value, print_json, stderr

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
            table.add_row(k, format_value(v), origin or "rlr")
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
