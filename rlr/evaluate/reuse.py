"""When `rlr evaluate` may reuse a completed evaluation instead of refusing it.

A CI script gates twice on the same run (`rlr evaluate X.yaml --min eval.pass@1=0.6` after a cached pipeline), so a
completed `eval/<label>/` is read back and gated again, as long as it answers the same question: same model files
(not modified since), same benchmarks and rows, same generation settings, same k. Anything else still needs
`--overwrite`, and the error says what changed, so an old result is never passed off as a new one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlr.errors import UserError
from rlr.paths import RESULTS_FILE


def evaluation_identity(model_info: dict[str, Any], benchmarks: list[dict[str, Any]], generation: dict[str, Any],
                        ks: list[int], limit: int | None, verifier: dict[str, Any] | None = None) -> dict[str, Any]:
    """What an evaluation's numbers depend on, as plain JSON (stored in results.json under `identity`); `verifier`:
    the correctness definition and its math-verify settings (another one scores the same completions otherwise)."""
    identity = {"model": model_info, "benchmarks": benchmarks, "generation": generation, "k": list(ks),
                "limit": limit}
    if verifier is not None:
        identity["verifier"] = verifier
    return json.loads(json.dumps(identity, default=str))


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def identity_changes(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """`key stored -> wanted` for each difference, in a stable order."""
    old, new = _flatten(stored), _flatten(wanted)
    return [f"{key} {old.get(key)!r} -> {new.get(key)!r}" for key in sorted(set(old) | set(new))
            if old.get(key) != new.get(key)]


def changes_text(stored: dict[str, Any], wanted: dict[str, Any], most: int = 3) -> str:
    """The first `most` differences as one phrase for an error ("" when there are none)."""
    changes = identity_changes(stored, wanted)
    more = f"; and {len(changes) - most} more" if len(changes) > most else ""
    return "; ".join(changes[:most]) + more


def newest_weight_change(paths: list[str]) -> tuple[float, str] | None:
    """(mtime, file) of the most recently modified file in the model's local directories; None for hub ids."""
    newest: tuple[float, str] | None = None
    for path in paths:
        root = Path(path)
        if not root.exists():
            continue
        files = [root] if root.is_file() else [f for f in root.rglob("*") if f.is_file()]
        for f in files:
            mtime = f.stat().st_mtime
            if newest is None or mtime > newest[0]:
                newest = (mtime, str(f))
    return newest


def reusable_results(stage_path: Path, wanted: dict[str, Any], model_paths: list[str]) -> dict[str, Any]:
    """The stored results of a completed eval stage if they answer `wanted`; else a UserError naming the change."""
    results_path = stage_path / RESULTS_FILE
    try:
        results = json.loads(results_path.read_text())
    except (OSError, json.JSONDecodeError):
        raise UserError(f"{stage_path} is complete but {results_path.name} is unreadable; pass --overwrite to "
                        "re-evaluate") from None
    stored = results.get("identity")
    if stored is None:
        raise UserError(f"{stage_path} is already complete (written by an older rlr, without the settings it used); "
                        "pass --overwrite to replace it")
    if changes := changes_text(stored, wanted):
        raise UserError(f"{stage_path} is already complete with other settings ({changes}); pass --overwrite to "
                        "replace it")
    newest = newest_weight_change(model_paths)
    if newest is not None and newest[0] > results_path.stat().st_mtime:
        raise UserError(f"{stage_path} is older than the model it evaluated ({newest[1]} changed since); pass "
                        "--overwrite to re-evaluate")
    return results
