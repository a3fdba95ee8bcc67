"""`rlr report` on synthetic run directories: files, valid PNGs, panels, overlays, missing keys, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _manifest(path: Path, stage: str, status: str = "complete", duration: float | None = 12.5) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "manifest.json").write_text(json.dumps(
        {"stage": stage, "status": status, "started_at": "2026-01-01T00:00:00+00:00",
         "finished_at": "2026-01-01T00:00:12+00:00" if duration else None, "duration_s": duration}))


def _rl_record(step: int, shift: float = 0.0) -> dict:
    acc = min(1.0, 0.1 + 0.04 * step + shift)
    return {
        "step": step, "loss": 0.01 * math.sin(step), "reward": acc + 0.1, "reward_std": 0.2, "accuracy": acc,
        "rewards/accuracy/mean": acc, "rewards/think_format/mean": 0.5, "completions/mean_length": 100 + 5 * step,
        "completions/max_length": 200 + 10 * step, "completions/clipped_ratio": 0.05, "kl": 0.001 * step,
        "entropy": 1.5 - 0.02 * step, "frac_reward_zero_std": 0.3, "clip_ratio/region_mean": 0.0,
        "learning_rate": 1e-6, "step_time_s": 2.0, "tokens_per_s": 900.0,
        "dynamic_sampling/zero_std_frac_before": 0.4, "dynamic_sampling/zero_std_frac_after": 0.0,
    }


def _eval_model(run: Path, label: str, benchmarks: dict) -> None:
    """What `rlr evaluate --model <label>` leaves: eval/<label>/{manifest,results}.json, then the comparison."""
    from rlr.evaluate.compare import write_comparison

    _manifest(run / "eval" / label, f"eval/{label}", duration=8.0)
    (run / "eval" / label / "results.json").write_text(json.dumps({
        "label": label, "model": {"requested": label, "path": f"/models/{label}"},
        "benchmarks": {b: {**m, "per_task": {b: m}, "timing": {"tokens_per_s": 50.0}} for b, m in benchmarks.items()},
    }))
    write_comparison(run / "eval")


def make_run(root: Path, name: str, shift: float = 0.0) -> Path:
    """A complete run: sft + rl metrics, manifests, base and rl models evaluated on two benchmarks."""
    run = root / name
    _manifest(run / "sft", "sft", duration=30.0)
    _write_jsonl(run / "sft" / "metrics.jsonl", [{"step": s, "loss": 2.0 / s, "mean_token_accuracy": 0.5 + 0.02 * s,
                                                  "learning_rate": 1e-5} for s in range(1, 11)])
    _manifest(run / "rl", "rl", duration=3725.0)
    _write_jsonl(run / "rl" / "metrics.jsonl",
                 [_rl_record(s, shift) for s in range(1, 21)] + [{"step": 20, "train_runtime": 99.0}])
    bench = {"num_problems": 50, "pass@1": 0.4 + shift, "pass@1_ci": [0.3 + shift, 0.5 + shift], "maj@8": 0.5,
             "avg@n": 0.4, "avg@n_ci": [0.32, 0.48], "greedy_accuracy": 0.45, "mean_length": 150.0}
    _eval_model(run, "base", {"gsm8k": {**bench, "pass@1": 0.2, "pass@1_ci": [0.1, 0.3]}, "math500": bench})
    _eval_model(run, "rl", {"gsm8k": bench, "math500": bench})
    return run


def assert_png(path: Path) -> tuple[int, int]:
    assert path.read_bytes()[:8] == PNG_SIGNATURE, path
    from matplotlib.image import imread

    image = imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100
    return image.shape[0], image.shape[1]


def test_report_one_run(cli, tmp_path):
    run = make_run(tmp_path / "runs", "gsm8k-grpo")
    result = cli("report", run)
    assert result.code == 0, result.stderr
    report = run / "report" / "report.md"
    assert result.stdout.strip() == str(report)
    for name in ("reward", "length", "kl_entropy", "zero_std", "rl_optim", "throughput", "sft", "eval"):
        assert_png(run / "report" / f"{name}.png")
        assert f"![{name}]({name}.png)" in report.read_text()
    text = report.read_text()
    for title in ("Reward", "Accuracy", "Reward per function", "Completion length", "KL to reference", "Entropy",
                  "Zero-variance groups", "SFT loss", "SFT token accuracy", "pass@1", "maj@8"):
        assert title in text
    assert "| rl | complete | 1h 02m |" in text and "| sft | complete | 30.0s |" in text
    assert "| eval/base | complete | 8.0s |" in text and "| **total** | | 1h 02m |" in text
    assert "rl `reward`: 0.24 (step 1)" in text and "(step 20)" in text
    assert "| rl | gsm8k | 50 | 0.4 [0.3, 0.5] | 0.5 |" in text  # eval table: n, pass@1 with its CI, maj@8
    assert "Skipped" not in text
    assert not (run / "report" / "tools.png").exists() and "Tool calls" not in text  # optional: no tools, no noise
    assert "tool_calls_per_episode" not in text
    assert not list((run / "report").glob("*.tmp"))  # atomic writes leave no temp files


@pytest.fixture
def legends(monkeypatch) -> dict[str, list[list[str]]]:
    """figure name -> the legend texts of each of its axes, captured as each PNG is saved."""
    from matplotlib.figure import Figure

    captured: dict[str, list[list[str]]] = {}
    original = Figure.savefig

    def spy(self, fname, *args, **kwargs):
        figure = Path(fname).name.split(".")[1]  # the temp name is .<figure>.<random>.png.tmp
        captured[figure] = [[t.get_text() for t in ax.get_legend().get_texts()] for ax in self.axes]
        return original(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    return captured


def test_report_overlays_two_runs(cli, tmp_path, legends):
    """Both runs on the same axes: every panel's legend names both, and the eval bars carry run/model labels."""
    a = make_run(tmp_path / "runs", "grpo")
    b = make_run(tmp_path / "runs", "dapo", shift=0.1)
    out = tmp_path / "cmp"
    result = cli("report", a, b, "--out", out)
    assert result.code == 0, result.stderr
    assert_png(out / "reward.png")
    text = (out / "report.md").read_text()
    assert "## grpo" in text and "## dapo" in text
    assert "Panels: Reward, Accuracy, Reward per function\n" in text
    assert sorted(legends) == ["eval", "kl_entropy", "length", "reward", "rl_optim", "sft", "throughput", "zero_std"]
    for figure, per_axes in legends.items():
        for labels in per_axes:
            assert any(x.startswith("grpo") for x in labels) and any(x.startswith("dapo") for x in labels), figure
    assert legends["length"][0] == ["grpo: mean_length", "grpo: max_length", "dapo: mean_length", "dapo: max_length"]
    assert legends["reward"][0] == ["grpo", "dapo"]
    assert legends["reward"][2] == ["grpo: accuracy", "grpo: think_format", "dapo: accuracy", "dapo: think_format"]
    assert legends["eval"][0] == ["grpo/base", "grpo/rl", "dapo/base", "dapo/rl"]


def test_report_of_a_tool_run_plots_tool_calls_and_tabulates_episode_metrics(cli, tmp_path, legends):
    """train-rl's metrics.jsonl with TRL's tool keys, and eval results.json with the tool episodes' means, as
    rlr/train/callbacks.py and rlr/evaluate/tool_rollout.py write them."""
    run = tmp_path / "runs" / "calc"
    _manifest(run / "rl", "rl", duration=60.0)
    _write_jsonl(run / "rl" / "metrics.jsonl", [
        {"step": s, "epoch": s / 10, "time": 1.7e9 + s, "loss": 0.01, "reward": 0.1 * s,
         "tools/call_frequency": 0.25 * s, "tools/failure_frequency": 0.5 / s, "num_tokens": 1000.0 * s,
         "step_time_s": 2.0} for s in range(1, 5)])
    episode = {"tool_calls_per_episode": 1.25, "tool_error_rate": 0.1, "turns_per_episode": 2.25}
    _eval_model(run, "base", {"calc": {"num_problems": 8, "pass@1": 0.25, "pass@1_ci": [0.0, 0.5], **episode,
                                       "tool_calls_per_episode": 0.5, "env_reward": None}})
    _eval_model(run, "rl", {"calc": {"num_problems": 8, "pass@1": 0.75, "pass@1_ci": [0.5, 1.0], **episode,
                                     "env_reward": 0.8}})
    result = cli("report", run)
    assert result.code == 0, result.stderr
    text = (run / "report" / "report.md").read_text()
    assert_png(run / "report" / "tools.png")
    assert "### tools\n\nPanels: Tool calls\n" in text and "![tools](tools.png)" in text
    assert legends["tools"] == [["calc: call_frequency", "calc: failure_frequency"]]
    assert "- rl `tools/call_frequency`: 0.25 (step 1) -> 1 (step 4)" in text
    assert "- rl `tools/failure_frequency`: 0.5 (step 1) -> 0.125 (step 4)" in text
    assert ("| model | benchmark | num_problems | pass@1 | tool_calls_per_episode | tool_error_rate | "
            "turns_per_episode | env_reward |") in text
    assert "| base | calc | 8 | 0.25 [0, 0.5] | 0.5 | 0.1 | 2.25 | – |" in text  # no reward from the environment
    assert "| rl | calc | 8 | 0.75 [0.5, 1] | 1.25 | 0.1 | 2.25 | 0.8 |" in text


def test_more_keys_than_line_styles(tmp_path, legends):
    """Six reward functions on one panel: none dropped (line styles repeat, the legend tells them apart)."""
    from rlr.report.plots import FIGURES, draw_curves

    records = [{"step": s, **{f"rewards/r{i}/mean": i * 0.1 for i in range(6)}} for s in range(1, 4)]
    drawn = draw_curves(FIGURES[0], {"a": records, "b": records}, tmp_path)
    assert drawn.panels == ["Reward per function"]
    assert len(legends["reward"][0]) == 12
    assert_png(tmp_path / "reward.png")


def test_missing_keys_are_skipped(cli, tmp_path):
    run = tmp_path / "runs" / "sparse"
    _write_jsonl(run / "rl" / "metrics.jsonl",
                 [{"step": s, "reward": 0.1 * s, "kl": None} for s in range(1, 6)])
    with open(run / "rl" / "metrics.jsonl", "a") as f:
        f.write('{"step": 6, "rew')  # a stage still writing
    out = run / "report"
    out.mkdir(parents=True)
    (out / "length.png").write_bytes(PNG_SIGNATURE)  # from an earlier report: must not outlive its data
    result = cli("report", run)
    assert result.code == 0, result.stderr
    assert_png(out / "reward.png")
    assert sorted(p.name for p in out.glob("*.png")) == ["reward.png"]
    text = (out / "report.md").read_text()
    assert "Panels: Reward\n" in text
    assert "Accuracy (no accuracy or matching keys in rl/metrics.jsonl)" in text
    assert "KL to reference (no kl in rl/metrics.jsonl; TRL logs kl only when beta > 0)" in text
    assert "`sft`: no sft/metrics.jsonl with records" in text and "`eval`: Eval (no results.json" in text
    assert "skipped 1 unreadable metrics line" in text


@pytest.mark.parametrize("layout", ["combined", "per_model"])
def test_other_eval_layouts(cli, tmp_path, layout):
    """Tolerant reading: one hand-written {"models": {label: {"benchmarks": ...}}} file, or per-model files only."""
    run = tmp_path / "runs" / "e"
    models = {label: {"benchmarks": {"gsm8k": {"pass@1": s, "pass@1_ci": [s - 0.1, s + 0.1], "maj@4": s}}}
              for label, s in (("rl", 0.6), ("base", 0.2))}
    if layout == "combined":
        (run / "eval").mkdir(parents=True)
        (run / "eval" / "results.json").write_text(json.dumps({"models": models}))
    for label, doc in models.items() if layout == "per_model" else ():
        (run / "eval" / label).mkdir(parents=True)
        (run / "eval" / label / "results.json").write_text(json.dumps({"model": f"/m/{label}", **doc}))
    result = cli("report", run, "--out", tmp_path / "out")
    assert result.code == 0, result.stderr
    text = (tmp_path / "out" / "report.md").read_text()
    base, rl = "| base | gsm8k | 0.2 [0.1, 0.3] | 0.2 |", "| rl | gsm8k | 0.6 [0.5, 0.7] | 0.6 |"
    assert text.index(base) < text.index(rl)  # before -> after, whatever order the files came in
    assert "Panels: pass@1, maj@4" in text
    assert_png(tmp_path / "out" / "eval.png")


@pytest.mark.parametrize("setup", ["missing", "empty", "stage_dir", "models_dir"])
def test_bad_run_dir_exits_2(cli, tmp_path, setup):
    target = tmp_path / "runs" / "nope"
    if setup == "empty":
        (target / "rl").mkdir(parents=True)
    elif setup == "models_dir":  # folders with manifests (exports, models) but no data/sft/rl/eval/export
        for name in ("my-model", "sftadapter"):
            (target / name).mkdir(parents=True)
            (target / name / "manifest.json").write_text('{"status": "complete"}')
    elif setup == "stage_dir":
        target = make_run(tmp_path / "runs", "r") / "rl"
    result = cli("report", target)
    assert result.code == 2
    assert str(target) in result.stderr
    if setup == "stage_dir":
        assert "stage directory" in result.stderr


def test_running_stage_and_resumed_steps(tmp_path):
    """A resumed stage re-logs steps; the last value per step wins. A running stage shows time so far."""
    from rlr.report.plots import series
    from rlr.report.stage import _wall_time

    records = [{"step": 1, "reward": 0.1}, {"step": 2, "reward": 0.2}, {"step": 2, "reward": 0.3},
               {"step": 3, "reward": float("nan")}, {"reward": 0.9}]
    assert series(records, "reward") == ([1.0, 2.0, 5.0], [0.1, 0.3, 0.9])
    assert _wall_time({"status": "running", "started_at": "2020-01-01T00:00:00+00:00"}).endswith("so far")
    assert _wall_time({"status": "failed"}) == "?"
