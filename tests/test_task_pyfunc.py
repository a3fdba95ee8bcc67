"""task:pyfunc: the generator (exact format, determinism, held-out functions), its solutions judged by the real
`code_tests` reward in the sandbox, and real `rlr sft` / `rlr train-rl` runs on the micro model with it."""

from __future__ import annotations

import json

import pytest
import yaml

from rlr.errors import UserError
from rlr.rewards.code import CodeTests
from rlr.rewards.correctness import score_correctness
from rlr.tasks import get_task, task_knobs
from rlr.tasks.pyfunc import affine_text, solution_block


def test_row_format_and_tests_on_held_out_inputs() -> None:
    rows = get_task("pyfunc").generate(300, seed=0)
    for row in rows:
        m, k = row["meta"]["m"], row["meta"]["k"]
        assert row["question"] == f"f(0)={k} f(1)={m + k} f(2)={2 * m + k}"
        assert row["answer"] == affine_text(m, k)
        assert row["solution"] == f"```python\ndef f(x):\n    return {affine_text(m, k)}\n```"
        # the generating expression is the same function as the canonical answer
        assert all(eval(row["meta"]["expression"], {"x": x}) == m * x + k for x in range(-3, 30))  # noqa: S307
        inputs = [int(t.split("(")[1].split(")")[0]) for t in row["meta"]["tests"]]
        assert len(inputs) == 3 and len(set(inputs)) == 3 and min(inputs) >= 3  # none of the shown inputs
        assert max(abs(v) for v in (k, m + k, 2 * m + k)) <= 99
    assert affine_text(1, 0) == "x" and affine_text(3, -2) == "x*3-2" and affine_text(2, 5) == "x*2+5"
    assert solution_block(3, -2, trace=True) == ("```python\ndef f(x):\n    # f(1)-f(0)=1-(-2)=3\n"
                                                 "    return x*3-2\n```")


def test_deterministic_and_eval_functions_held_out_of_train() -> None:
    task = get_task("pyfunc")
    eval_rows = task.generate(200, seed=1)
    assert eval_rows == get_task("pyfunc").generate(200, seed=1)
    train = task.generate(1600, seed=2, exclude={r["question"] for r in eval_rows})
    held_out = {(r["meta"]["m"], r["meta"]["k"]) for r in eval_rows}
    # a question is the function's values, so a disjoint question set is a disjoint set of functions
    assert not held_out & {(r["meta"]["m"], r["meta"]["k"]) for r in train}
    assert len(held_out) == 200


def test_solution_passes_its_tests_in_the_sandbox_and_wrong_code_fails() -> None:
    rows = get_task("pyfunc").generate(6, seed=4)
    wrong = [f"```python\ndef f(x):\n    return {affine_text(r['meta']['m'] + 1, r['meta']['k'])}\n```" for r in rows]
    off_by_one = [f"```python\ndef f(x):\n    return {affine_text(r['meta']['m'], r['meta']['k'] + 1)}\n```"
                  for r in rows]
    # the tests as the trainer passes them: the meta column
    completions = [r["solution"] for r in rows] + wrong + off_by_one + ["f(x) = x", "```python\nf = 3\n```"]
    metas = [r["meta"] for r in rows] * 3 + [rows[0]["meta"]] * 2
    scores = CodeTests()(completions, meta=metas)
    assert scores == [1.0] * 6 + [0.0] * 14
    # and as evaluate scores the rows prepare-data writes (task "code"): the same verdict
    assert score_correctness(completions[:7], [""] * 7, ["code"] * 7, metas[:7]) == [1.0] * 6 + [0.0]
    assert get_task("pyfunc").verify(rows[0]["solution"], rows[0]["answer"], rows[0]["meta"]) == 1.0
    # a GRPO group of identical samples is one verdict, given to each of them (and a different text its own)
    assert CodeTests()([rows[0]["solution"]] * 8 + [wrong[0]], meta=[rows[0]["meta"]] * 9) == [1.0] * 8 + [0.0]


def test_knobs_are_declared_and_checked() -> None:
    assert list(task_knobs("pyfunc")) == ["ops", "max_const", "max_ops", "max_value", "examples", "tests", "trace"]
    row = get_task("pyfunc", ops=["*"], max_const=3, max_ops=1, examples=4, tests=2).generate(1, seed=0)[0]
    assert row["question"].count("f(") == 4 and len(row["meta"]["tests"]) == 2 and row["meta"]["k"] == 0
    for knobs, key in (({"ops": ["/"]}, "args.ops"), ({"max_const": 0}, "args.max_const"),
                       ({"examples": 1}, "args.examples"), ({"tests": 21}, "args.tests"),
                       ({"bogus": 1}, "args.bogus")):
        with pytest.raises(UserError) as err:
            get_task("pyfunc", **knobs)
        assert err.value.key == key
    with pytest.raises(UserError, match="max_value"):
        get_task("pyfunc", ops=["+"], examples=8, max_value=3).generate(1, seed=0)


def test_sft_then_grpo_with_code_tests_on_the_micro_model(cli, tmp_path, micro_model) -> None:
    """The preset's shape in miniature: prepare-data writes `code` rows, sft trains, train-rl runs code_tests."""
    preset = tmp_path / "p.yaml"
    preset.write_text(yaml.safe_dump({
        "run": {"name": "pyfunc", "output_dir": str(tmp_path / "runs"), "seed": 0},
        "model": {"name_or_path": str(micro_model)},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
        "template": {"system": "none", "answer_format": "none", "chat": True},
        "data": {"train": {"source": "task:pyfunc", "rows": 64}, "eval": {"source": "task:pyfunc", "rows": 8}},
        "rewards": [{"name": "code_tests", "args": {"timeout_s": 5, "test_timeout_s": 1}}],
        "sft": {"use_lora": False, "trainer": {"max_steps": 2, "per_device_train_batch_size": 8, "max_length": 96,
                                               "save_steps": 100}},
        "rl": {"algorithm": "grpo", "trainer": {"max_steps": 2, "per_device_train_batch_size": 8,
                                                "num_generations": 4, "max_completion_length": 16,
                                                "save_steps": 100, "dataloader_num_workers": 0}},
    }))
    assert cli("prepare-data", preset).code == 0
    row = json.loads((tmp_path / "runs/pyfunc/data/train.jsonl").read_text().splitlines()[0])
    assert row["task"] == "code" and len(json.loads(row["meta"])["tests"] if isinstance(row["meta"], str)
                                         else row["meta"]["tests"]) == 3
    result = cli("sft", preset, "--json")
    assert result.code == 0, result.stderr
    result = cli("train-rl", preset, "--json")
    assert result.code == 0, result.stderr
    steps = [json.loads(line) for line in (tmp_path / "runs/pyfunc/rl/metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in steps if "rewards/code_tests/mean" in m] == [1, 2]
