"""`rlr pipeline`: prepare-data -> sft -> evaluate (before RL) -> train-rl -> evaluate (after) -> export.

Each step is the same stage function the single commands call, on the same experiment file; a step whose stage
directory is complete is skipped, so an interrupted pipeline picks up where it stopped. Between evaluate and
train-rl the pipeline checks that the starting model lies in the band where RL can help (from under ~5% sampled
accuracy GRPO has no successes to learn from, near 100% there is nothing left to gain) and stops, naming the band
and the knob to turn.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rlr.config.load import LoadedConfig
from rlr.errors import GateFailed
from rlr.paths import RESULTS_FILE, eval_dir, eval_stage, run_root
from rlr.runs import StageRun
from rlr.stage import stage_function, stage_options

# pipeline step -> (command, stage directory relative to the run root)
STEPS = {
    "data": ("prepare-data", "data"),
    "sft": ("sft", "sft"),
    "eval_before": ("evaluate", None),  # eval/<label of the model RL starts from>
    "rl": ("train-rl", "rl"),
    "eval_after": ("evaluate", eval_stage("rl")),
    "export": ("export", "export"),
}


def ensure_tiny_model(cfg: Any) -> None:
    """The quickstart's model is built locally on first use (no hub)."""
    path = Path(cfg.model.name_or_path)
    if (path / "config.json").is_file():
        return
    from rlr.console import stderr
    from rlr.models.tiny import build_tiny_model

    stderr.print(f"building the offline tiny model into {path} ...")
    build_tiny_model(path)


def before_label(cfg: Any) -> str:
    return "sft" if "sft" in cfg.pipeline.stages else "base"


def read_eval(cfg: Any, label: str) -> dict[str, Any]:
    from rlr.files import read_json

    path = eval_dir(cfg, label) / RESULTS_FILE
    return read_json(path) if path.is_file() else {}


def headline(results: dict[str, Any]) -> dict[str, Any]:
    """Sampled and greedy accuracy (with 95% intervals) on the first benchmark of an evaluation."""
    benchmarks = results.get("benchmarks") or {}
    if not benchmarks:
        return {}
    name, m = next(iter(benchmarks.items()))
    return {
        "benchmark": name,
        "sampled": m.get("avg@n"), "sampled_ci": m.get("avg@n_ci"),
        "greedy": m.get("greedy_accuracy"), "greedy_ci": m.get("greedy_accuracy_ci"),
    }


def check_band(cfg: Any, label: str) -> None:
    band = cfg.pipeline.rl_band
    if band is None:
        return
    h = headline(read_eval(cfg, label))
    acc = h.get("sampled")
    if acc is None:
        return
    low, high = band
    if not low <= acc <= high:
        raise GateFailed(
            f"the {label} model's sampled accuracy {acc:.1%} is outside pipeline.rl_band [{low:.0%}, {high:.0%}] "
            f"where RL can help; {band_fix(cfg, acc, low)}"
        )


def band_fix(cfg: Any, acc: float, low: float) -> str:
    """The knob to turn: stop SFT on the metric itself (sft.stop_at) rather than re-guessing a step count."""
    spec = cfg.sft.stop_at
    if "sft" not in cfg.pipeline.stages:
        return "start RL from a stronger model (rl.init_from) or move the band"
    if spec.value is None:
        return (f"let SFT stop when it gets there (sft.stop_at.value={max(low, 0.05):.2f}, checked every "
                f"sft.stop_at.every steps) instead of after sft.trainer.max_steps, or move the band")
    if acc < low and spec.value < low:
        return f"sft.stop_at.value={spec.value} lies below the band; raise it to at least {low} or lower the band"
    if acc < low:
        return (f"sft.stop_at.value={spec.value} was not reached within sft.trainer.max_steps; raise max_steps or "
                "the learning rate, or lower the band")
    return f"lower sft.stop_at.value (now {spec.value}) or check it more often (sft.stop_at.every), or raise the band"


def run_pipeline(loaded: LoadedConfig, *, overwrite: bool = False, as_json: bool = False) -> dict[str, Any]:
    from rlr.console import stderr
    from rlr.train.loop import last_checkpoint

    cfg = loaded.cfg
    root = run_root(cfg)
    timings: dict[str, float | str] = {}
    for step in cfg.pipeline.stages:
        command, stage_dir = STEPS[step]
        models: dict[str, Any] = {}  # which model an evaluate step scores
        if step == "eval_before":
            label = before_label(cfg)
            stage_dir = eval_stage(label)
            models = {"models": [label]}
        elif step == "eval_after":
            models = {"models": ["rl"]}
        stage = StageRun(root, stage_dir)
        if stage.is_complete() and not overwrite:
            stderr.print(f"[dim]{step}: complete, skipped ({stage.path})[/dim]")
            timings[step] = "skipped"
        else:
            stderr.rule(f"[bold]{step}[/bold]: rlr {command}")
            t0 = time.time()
            # An interrupted stage continues from its checkpoint when it has one, else starts over.
            resume = last_checkpoint(stage.path) is not None
            redo = overwrite or (stage.path.exists() and not resume)
            opts = stage_options(command, overwrite=redo, resume=resume, json=as_json, **models)
            stage_function(command)(loaded, opts)
            timings[step] = round(time.time() - t0, 1)
        if step == "eval_before":
            check_band(cfg, before_label(cfg))
    summary = {
        "run": str(root),
        "before_rl": headline(read_eval(cfg, before_label(cfg))),
        "after_rl": headline(read_eval(cfg, "rl")),
        "stage_seconds": timings,
    }
    try:
        from rlr.report.stage import write_report

        summary["report"] = str(write_report([root], None))
    except ImportError:
        pass
    if not as_json:
        print_pipeline_table(summary)
    return summary


def _pct(value: Any, ci: Any) -> str:
    if value is None:
        return "-"
    text = f"{value:.1%}"
    if ci:
        text += f" [{ci[0]:.1%}, {ci[1]:.1%}]"
    return text


def print_pipeline_table(summary: dict[str, Any]) -> None:
    from rich.table import Table

    from rlr.console import stderr

    before, after = summary["before_rl"], summary["after_rl"]
    table = Table(title=f"{summary['run']}: accuracy on {before.get('benchmark') or after.get('benchmark', '-')}"
                        " (95% bootstrap interval)", title_justify="left")
    table.add_column("")
    table.add_column("before RL")
    table.add_column("after RL")
    for key, label in (("greedy", "greedy"), ("sampled", "sampled (avg@n)")):
        table.add_row(label, *(_pct(h.get(key), h.get(f"{key}_ci")) for h in (before, after)))
    stderr.print(table)
    times = ", ".join(f"{k} {v}s" if isinstance(v, float) else f"{k} {v}" for k, v in summary["stage_seconds"].items())
    stderr.print(f"wall time per stage: {times}")
    if summary.get("report"):
        stderr.print(f"report: {summary['report']}")
