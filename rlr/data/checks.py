"""What the data stage checks before anything is read: every source names a reachable file, a known task with
valid knobs, or a hub / reasoning-gym id (those two are checked when they are loaded)."""

from __future__ import annotations

from typing import Any

from rlr.config.coerce import Problems


def check_sources(loaded: Any, problems: Problems) -> None:
    from rlr.paths import resolve_data_path

    data = loaded.cfg.data
    for section, sources in (("train", data.train), ("eval", data.eval)):
        for i, src in enumerate(sources):
            item = f"data.{section}[{i}]"
            s = src.source
            if not s or s.startswith(("hf:", "gym:", "env:")):  # env: is checked with rl.environment
                continue
            if s.startswith("task:"):
                from rlr.tasks import get_task

                try:
                    get_task(s.removeprefix("task:"), **src.args)
                except Exception as e:  # the task registry names the knob (e.key: source, args.<knob>) and the fix
                    problems.add_error(item, e, "args")
                continue
            if resolve_data_path(s, loaded.base_dir) is None:
                problems.add(f"{item}.source", f"no such file '{s}'; give a .jsonl/.json/.parquet/.csv path, "
                             "hf:<dataset id>, task:<name> or gym:<name>")
