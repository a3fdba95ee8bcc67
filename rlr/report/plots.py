"""The plots of `rlr report`: which training curves go on which panel, and how several runs share the axes.

The figures are declared as data (`FIGURES`) rather than drawn by hand, because the logged keys depend on the
TRL version, the algorithm and the rewards of a run: a panel is drawn only for the keys some run actually logged,
and everything else is recorded as skipped so report.md can say what was missing instead of showing empty axes
(except an `optional` panel, whose keys only some kinds of run log: the tool loop's).

Matplotlib is used through `matplotlib.figure.Figure` only (no pyplot): that renders with Agg without touching the
global backend or figure registry, so the report works headless and inside a long-lived process.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlr.files import atomic_write_via
from rlr.trl_internals import (
    LOG_CLIP_RATIOS,
    LOG_CLIPPED_RATIO,
    LOG_ENTROPY,
    LOG_FRAC_REWARD_ZERO_STD,
    LOG_KL,
    LOG_LEARNING_RATE,
    LOG_LOSS,
    LOG_MAX_LENGTH,
    LOG_MEAN_LENGTH,
    LOG_REWARD,
    LOG_REWARD_STD,
    LOG_SFT_TOKEN_ACCURACY,
    LOG_TOOL_CALL_FREQUENCY,
    LOG_TOOL_FAILURE_FREQUENCY,
    reward_name_of,
)

Series = tuple[list[float], list[float]]  # (steps, values)


@dataclass(frozen=True)
class Panel:
    """One set of axes: the exact metric names in `keys`; when none of them was logged, the keys `match` picks
    (e.g. per-reward means), so older runs without rlr's `accuracy` key still get an accuracy panel."""

    title: str
    keys: tuple[str, ...] = ()
    match: Callable[[str], bool] | None = None
    ylabel: str = ""
    band: dict[str, str] = field(default_factory=dict)  # key -> its std key, drawn as a shaded +-1 std band
    why_missing: str = ""  # the usual reason the keys are absent, for report.md
    smooth: bool = True  # False for schedules (learning rate): averaging would only blur a known shape
    # True for keys only some kinds of run log at all (tools): without them the panel is left out silently, since
    # listing it as skipped in the report of every run without tools would only be noise
    optional: bool = False


@dataclass(frozen=True)
class FigureSpec:
    name: str  # file stem: <out>/<name>.png
    stage: str  # which stage's metrics.jsonl it reads
    title: str
    panels: tuple[Panel, ...]


def _reward_mean(key: str) -> bool:
    return reward_name_of(key) is not None


def _is_accuracy(key: str) -> bool:
    """A correctness reward's mean, for runs that logged no `accuracy` of their own (older rlr): a built-in that
    declares `measures_correctness`, or a name saying "correct". Current runs log `accuracy` from every reward that
    declares the trait, plugins included, and record their names in rl/manifest.json (`correctness_rewards_of_run`)."""
    from rlr.rewards.registry import correctness_reward_names

    reward = reward_name_of(key)
    if reward is None:
        return False
    name = re.sub(r"_\d+$", "", reward)  # `accuracy_2`: a reward listed twice
    return name in correctness_reward_names() or "correct" in key


# TRL's key names come from rlr/trl_internals.py (the contract test checks TRL still logs them); `accuracy`,
# `step_time_s`, `tokens_per_s` and `dynamic_sampling/*` are rlr's own (rlr/train/).
FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("reward", "rl", "reward and accuracy", (
        Panel("Reward", (LOG_REWARD,), ylabel="mean reward", band={LOG_REWARD: LOG_REWARD_STD}),
        Panel("Accuracy", ("accuracy",), match=_is_accuracy, ylabel="accuracy"),
        Panel("Reward per function", match=_reward_mean, ylabel="mean (unweighted)"),
    )),
    FigureSpec("length", "rl", "completion length", (
        Panel("Completion length", (LOG_MEAN_LENGTH, LOG_MAX_LENGTH), ylabel="tokens"),
        Panel("Clipped (truncated) completions", (LOG_CLIPPED_RATIO,), ylabel="fraction"),
    )),
    FigureSpec("kl_entropy", "rl", "KL and entropy", (
        Panel("KL to reference", (LOG_KL,), ylabel="KL", why_missing="TRL logs kl only when beta > 0"),
        Panel("Entropy", (LOG_ENTROPY,), ylabel="nats/token"),
    )),
    FigureSpec("zero_std", "rl", "zero-variance groups", (
        Panel("Zero-variance groups", (LOG_FRAC_REWARD_ZERO_STD, "dynamic_sampling/zero_std_frac_before",
                                       "dynamic_sampling/zero_std_frac_after"), ylabel="fraction of groups"),
    )),
    FigureSpec("rl_optim", "rl", "optimisation", (
        Panel("RL loss", (LOG_LOSS,)),
        Panel("Clip ratio", LOG_CLIP_RATIOS, ylabel="fraction"),
        Panel("RL learning rate", (LOG_LEARNING_RATE,), smooth=False),
    )),
    FigureSpec("tools", "rl", "tool calls", (
        Panel("Tool calls", (LOG_TOOL_CALL_FREQUENCY, LOG_TOOL_FAILURE_FREQUENCY),
              ylabel="calls per completion / failed fraction", optional=True),
    )),
    FigureSpec("throughput", "rl", "throughput", (
        Panel("Step time", ("step_time_s",), ylabel="seconds"),
        Panel("Throughput", ("tokens_per_s",), ylabel="tokens/s"),
    )),
    FigureSpec("sft", "sft", "supervised fine-tuning", (
        Panel("SFT loss", (LOG_LOSS,)),
        Panel("SFT token accuracy", (LOG_SFT_TOKEN_ACCURACY,), ylabel="accuracy"),
        Panel("SFT learning rate", (LOG_LEARNING_RATE,), smooth=False),
    )),
)

LINE_STYLES = ("-", "--", ":", "-.")
SMOOTH_FROM = 50  # from this many points a curve is drawn as a centred moving average over ~4% of its steps
EVAL_METRICS_PREFERRED = ("pass@1", "avg@n", "greedy_accuracy")  # first choices for the eval bar chart


@dataclass
class Drawn:
    """What one figure ended up showing, for report.md."""

    file: str | None
    panels: list[str]
    skipped: list[str]  # "title (no <keys>)"


def series(records: Sequence[dict[str, Any]], key: str) -> Series:
    """(steps, values) for one key: finite numbers only, and the last value wins when a step repeats (a resumed
    stage appends its re-logged steps after the old ones)."""
    by_step: dict[float, float] = {}
    for i, record in enumerate(records):
        value = record.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        step = record.get("step")
        by_step[float(step) if isinstance(step, (int, float)) else float(i + 1)] = float(value)
    steps = sorted(by_step)
    return steps, [by_step[s] for s in steps]


def short_name(key: str) -> str:
    """`rewards/accuracy/mean` -> `accuracy`, `completions/mean_length` -> `mean_length`: legends stay readable."""
    return reward_name_of(key) or key.rsplit("/", 1)[-1]


def _panel_keys(panel: Panel, runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    keys = [k for k in panel.keys if any(series(records, k)[0] for records in runs.values())]
    if keys or panel.match is None:
        return keys
    found = {key for records in runs.values() for record in records for key in record if panel.match(key)}
    return [k for k in sorted(found) if any(series(records, k)[0] for records in runs.values())]


def _smooth(values: list[float]) -> list[float]:
    """Centred moving average over ~4% of the points: RL curves are noisy per step and the trend is what one
    compares across runs; centred rather than trailing so a change shows at the step where it happened."""
    half = max(1, len(values) // 50)
    prefix = [0.0]
    for v in values:
        prefix.append(prefix[-1] + v)
    n = len(values)
    return [(prefix[min(n, i + half + 1)] - prefix[max(0, i - half)]) / (min(n, i + half + 1) - max(0, i - half))
            for i in range(n)]


def _save(fig: Any, path: Path) -> None:
    """Write a PNG atomically: a reader never sees half an image, and a failed render keeps the old one."""
    atomic_write_via(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, 2) if n != 3 else 3
    return math.ceil(n / cols), cols


def _figure(rows: int, cols: int, panel_width: float, panel_height: float = 3.6) -> Any:
    """Fixed margins in inches instead of constrained layout, which doubled the render time of every report."""
    from matplotlib.figure import Figure

    width, height = panel_width * cols, panel_height * rows + 0.5
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=0.85 / width, right=1 - 0.2 / width, bottom=0.55 / height, top=1 - 0.75 / height,
                        wspace=0.3, hspace=1.1 / (panel_height - 1.1))
    return fig


def draw_curves(spec: FigureSpec, runs: dict[str, list[dict[str, Any]]], out_dir: Path) -> Drawn:
    """One PNG per figure; each run keeps its colour on every panel and key suffixes tell series apart."""
    from matplotlib.ticker import MaxNLocator

    to_draw: list[tuple[Panel, list[str]]] = []
    skipped: list[str] = []
    for panel in spec.panels:
        keys = _panel_keys(panel, runs)
        if keys:
            to_draw.append((panel, keys))
        elif not panel.optional:
            wanted = " or ".join([*panel.keys, *(["matching keys"] if panel.match else [])])
            why = f"; {panel.why_missing}" if panel.why_missing else ""
            skipped.append(f"{panel.title} (no {wanted} in {spec.stage}/metrics.jsonl{why})")
    if not to_draw:
        return Drawn(None, [], skipped)

    rows, cols = _grid(len(to_draw))
    fig = _figure(rows, cols, 5.5)
    colours = [f"C{i % 10}" for i in range(len(runs))]
    for index, (panel, keys) in enumerate(to_draw):
        ax = fig.add_subplot(rows, cols, index + 1)
        for run_colour, (run_name, records) in zip(colours, runs.items(), strict=True):
            for k, key in enumerate(keys):
                # several runs: colour = run, line style = key; one run: every key its own colour
                colour = run_colour if len(runs) > 1 else f"C{k % 10}"
                style = LINE_STYLES[k % len(LINE_STYLES)] if len(runs) > 1 else "-"
                steps, values = series(records, key)
                if not steps:
                    continue
                label = run_name if len(keys) == 1 else f"{run_name}: {short_name(key)}"
                if panel.smooth and len(values) >= SMOOTH_FROM:
                    ax.plot(steps, values, color=colour, linestyle=style, alpha=0.25, linewidth=0.8)
                    values = _smooth(values)
                ax.plot(steps, values, color=colour, linestyle=style, label=label,
                        marker="." if len(steps) < 30 else None)
                std_steps, std = series(records, panel.band.get(key, ""))
                if std_steps == steps and len(runs) == 1:  # overlapping bands of several runs hide the curves
                    std = _smooth(std) if panel.smooth and len(std) >= SMOOTH_FROM else std
                    ax.fill_between(steps, [v - s for v, s in zip(values, std, strict=True)],
                                    [v + s for v, s in zip(values, std, strict=True)], color=colour, alpha=0.12)
        ax.set_title(panel.title)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(panel.ylabel or (keys[0] if len(keys) == 1 else ""))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(f"{spec.stage}: {spec.title}")
    _save(fig, out_dir / f"{spec.name}.png")
    return Drawn(f"{spec.name}.png", [p.title for p, _ in to_draw], skipped)


def eval_metrics_to_plot(rows: list[dict[str, Any]]) -> list[str]:
    """pass@1 / avg@n / greedy accuracy where present, plus the largest maj@k (what sampling with a vote buys)."""
    present = {m for row in rows for m, v in row["metrics"].items() if isinstance(v, (int, float))}
    chosen = [m for m in EVAL_METRICS_PREFERRED if m in present]
    majs = sorted((m for m in present if m.startswith("maj@") and m[4:].isdigit()), key=lambda m: int(m[4:]))
    return chosen + majs[-1:]


def draw_eval(rows: list[dict[str, Any]], out_dir: Path) -> Drawn:
    """Bars: one group per benchmark, one bar per (run, model), a panel per metric; whiskers are the 95% CIs."""
    metrics = eval_metrics_to_plot(rows)
    if not metrics:
        return Drawn(None, [], ["Eval (no results.json with numeric metrics under eval/)"])
    benches = sorted({row["benchmark"] for row in rows})
    bars = list(dict.fromkeys(row["label"] for row in rows))
    rows_by = {(row["label"], row["benchmark"]): row["metrics"] for row in rows}
    cols = min(len(metrics), 2)
    n_rows = math.ceil(len(metrics) / cols)
    fig = _figure(n_rows, cols, max(5.5, 1.2 + 0.5 * len(bars) * len(benches)), 3.8)
    width = min(0.8 / len(bars), 0.25)  # one model on one benchmark should not fill the axes
    for index, metric in enumerate(metrics):
        ax = fig.add_subplot(n_rows, cols, index + 1)
        for b, label in enumerate(bars):
            xs, heights, lower, upper = [], [], [], []
            for x, bench in enumerate(benches):
                values = rows_by.get((label, bench), {})
                value = values.get(metric)
                if not isinstance(value, (int, float)):
                    continue
                ci = values.get(f"{metric}_ci")
                lo, hi = (ci if isinstance(ci, (list, tuple)) and len(ci) == 2 else (value, value))
                xs.append(x + width * (b + 0.5 - len(bars) / 2))
                heights.append(value)
                lower.append(max(0.0, value - lo))
                upper.append(max(0.0, hi - value))
            if xs:
                ax.bar(xs, heights, width, label=label, color=f"C{b % 10}",
                       yerr=[lower, upper] if any(lower + upper) else None, capsize=3)
        ax.set_xticks(range(len(benches)), benches)
        ax.set_xlim(-0.6, len(benches) - 0.4)
        ax.set_title(metric)
        if ax.get_ylim()[1] <= 1.1:  # a rate: full scale, with headroom for the legend above the bars
            ax.set_ylim(0, 1.35)
            ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize="small", loc="upper center", ncols=min(len(bars), 3))
    fig.suptitle("eval: models x benchmarks (95% CI)")
    _save(fig, out_dir / "eval.png")
    return Drawn("eval.png", metrics, [])
