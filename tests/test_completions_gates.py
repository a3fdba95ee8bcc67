"""`rlr evaluate --completions FILE --min ...`: a CI gate on completions generated elsewhere is checked like one on
rlr's own generations (it was silently ignored: exit 0 whatever the score, and a malformed gate passed)."""

from __future__ import annotations

import json
from pathlib import Path


def setup(make_preset, tmp_path: Path) -> tuple[Path, Path]:
    bench = tmp_path / "sums.jsonl"
    bench.write_text("".join(json.dumps({"question": f"{i}+1=", "answer": str(i + 1)}) + "\n" for i in range(4)))
    completions = tmp_path / "api.jsonl"  # 2 of 4 right
    completions.write_text("".join(json.dumps({"question": f"{i}+1=", "completion": str(i + 1 if i < 2 else 0)})
                                   + "\n" for i in range(4)))
    preset = make_preset("some/model", eval={"benchmarks": [str(bench)], "samples": 1, "k": [1]})
    return preset, completions


def test_a_missed_gate_on_a_completions_file_exits_1_naming_it(cli, make_preset, tmp_path):
    preset, completions = setup(make_preset, tmp_path)
    passed = cli("evaluate", preset, "--completions", completions, "--min", "sums.pass@1=0.5", "--json")
    assert passed.code == 0, passed.stderr
    summary = json.loads(passed.stdout)
    assert summary["gates"] == ["sums.pass@1>=0.5"] and summary["gate_failures"] == [] and "wall_s" in summary
    missed = cli("evaluate", preset, "--completions", completions, "--min", "sums.pass@1=0.9", "--json")
    assert missed.code == 1, missed.stderr
    stderr = " ".join(missed.stderr.split())  # rich wraps long lines at the terminal width
    assert "sums.pass@1 = 0.50 < 0.90" in stderr and "reusing its results" in stderr
    assert json.loads(missed.stdout)["gate_failures"]


def test_a_malformed_gate_with_a_completions_file_exits_2_before_scoring(cli, make_preset, tmp_path):
    preset, completions = setup(make_preset, tmp_path)
    for gate, expected in (("garbage", "is malformed"), ("gsm8k.pass@1=0.5", "benchmark 'gsm8k' is not evaluated")):
        r = cli("evaluate", preset, "--completions", completions, "--min", gate)
        assert r.code == 2 and expected in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "runs/t/eval").exists()


def test_a_completions_line_with_a_non_text_benchmark_exits_2_naming_the_line(cli, make_preset, tmp_path):
    preset, completions = setup(make_preset, tmp_path)
    completions.write_text(json.dumps({"question": "0+1=", "completion": "1", "benchmark": 3}) + "\n")
    r = cli("evaluate", preset, "--completions", completions)
    assert r.code == 2 and "api.jsonl:1" in r.stderr and "'benchmark'" in r.stderr, r.stderr


def test_a_completion_past_the_limit_names_the_limit(cli, make_preset, tmp_path):
    """With eval.limit (or --limit) only the first N problems are loaded: a full completions file then "matched no
    problem" with no word about the limit."""
    preset, completions = setup(make_preset, tmp_path)
    r = cli("evaluate", preset, "--completions", completions, "--limit", "2")
    assert r.code == 2 and "matches no problem" in r.stderr and "--limit 2" in r.stderr, r.stderr


def test_model_or_resume_with_a_completions_file_exits_2_naming_the_option(cli, make_preset, tmp_path):
    """--completions scores a file and generates nothing: --model and --resume were silently ignored."""
    preset, completions = setup(make_preset, tmp_path)
    for extra, expected in ((["--model", "sft"], "--model sft with --completions"),
                            (["--resume"], "--resume with --completions")):
        r = cli("evaluate", preset, "--completions", completions, *extra)
        errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
        assert r.code == 2 and len(errors) == 1 and errors[0].startswith(f"error: {expected}"), r.stderr
        assert "drop " in errors[0] and "Traceback" not in r.stderr
    assert not (tmp_path / "runs/t/eval").exists()


def test_a_complete_completions_run_with_other_inputs_says_what_changed(cli, make_preset, tmp_path):
    """It said only "already complete; pass --overwrite", not which input differs from the stored run."""
    preset, completions = setup(make_preset, tmp_path)
    assert cli("evaluate", preset, "--completions", completions).code == 0
    r = cli("evaluate", preset, "--completions", completions, "template.answer_format=boxed")
    stderr = " ".join(r.stderr.split())
    assert r.code == 2 and "is already complete for other inputs (verifier.answer_format 'none' -> 'boxed')" in stderr
    assert "pass --overwrite to rescore" in stderr and "Traceback" not in stderr, stderr
    completions.write_text(json.dumps({"question": "0+1=", "completion": "1"}) + "\n")
    r = cli("evaluate", preset, "--completions", completions)
    stderr = " ".join(r.stderr.split())
    assert r.code == 2 and "(completions.lines 4 -> 1; completions.records 4 -> 1; completions.sha256 '" in stderr
    assert cli("evaluate", preset, "--completions", completions, "--overwrite").code == 0
