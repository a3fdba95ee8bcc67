"""`rlr prepare-data` end to end through the real CLI: files on disk are what later stages read."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from rlr.data.prepared import COLUMNS
from rlr.data.templates import ANSWER_FORMATS, SYSTEM_PROMPTS


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def gsm8k_rows(n: int = 20, start: int = 0) -> list[dict[str, str]]:
    return [{"question": f"Tom has {i} apples and buys {i + 7} more crates of apples. How many now?",
             "answer": f"He buys crates.\n<<{i}*7=42>>\n#### 1,0{i:02d}"} for i in range(start, start + n)]


def prepare(cli, preset: Path, *args: str) -> dict[str, Any]:
    r = cli("prepare-data", preset, "--json", *args)
    assert r.code == 0, r.stderr
    return json.loads(r.stdout)


def data_dir(tmp_path: Path, name: str = "t") -> Path:
    return tmp_path / "runs" / name / "data"


def test_procedural_source_end_to_end(cli, make_preset, tmp_path):
    preset = make_preset(template={"system": "r1_zero", "answer_format": "answer_tag"})
    summary = prepare(cli, preset)
    assert summary["train_rows"] == 64 and summary["eval_rows"] == 16
    d = data_dir(tmp_path)
    train, evals = read_jsonl(d / "train.jsonl"), read_jsonl(d / "eval.jsonl")
    assert len(train) == 64 and len(evals) == 16
    for row in train + evals:
        assert set(row) == set(COLUMNS)
        assert row["task"] == "arithmetic"
        assert isinstance(json.loads(row["meta"]), dict)
        system, user = row["prompt"]
        assert system == {"role": "system", "content": SYSTEM_PROMPTS["r1_zero"]}
        assert user["role"] == "user" and user["content"].endswith("\n" + ANSWER_FORMATS["answer_tag"])
    questions = {json.loads(r["meta"])["question"] for r in train}
    assert questions.isdisjoint(json.loads(r["meta"])["question"] for r in evals)
    assert len(questions) == 64  # unique within train
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["counts"] == {"train": 64, "eval": 16}
    assert manifest["by_source"]["train"] == {"task:arithmetic": 64}
    assert manifest["outputs"]["train.jsonl"]["sha256"] == hashlib.sha256((d / "train.jsonl").read_bytes()).hexdigest()
    assert manifest["template"]["system"] == "r1_zero"
    assert [s["split_role"] for s in manifest["inputs"]["sources"]] == ["train", "eval"]


def test_gsm8k_format_file_extracts_after_hashes(cli, make_preset, tmp_path):
    rows = [*gsm8k_rows(20), {"question": "A question with no final answer marker?", "answer": "just prose"}]
    source = write_jsonl(tmp_path / "gsm8k.jsonl", rows)
    preset = make_preset(data={"train": {"source": str(source)}},  # answer_format auto: detected once per source
                         template={"system": "none", "answer_format": "boxed", "chat": False})
    summary = prepare(cli, preset)
    assert summary["train_rows"] == 20 and summary["eval_rows"] == 0
    assert summary["dropped"]["train"]["no_gsm8k_answer"] == 1
    train = read_jsonl(data_dir(tmp_path) / "train.jsonl")
    by_q = {json.loads(r["meta"])["question"]: r for r in train}
    row = by_q[rows[3]["question"]]
    assert row["answer"] == "1003" and row["solution"] == "He buys crates.\n<<3*7=42>>" and row["task"] == "math"
    assert row["prompt"] == rows[3]["question"] + "\nPut your final answer within \\boxed{}."
    assert not (data_dir(tmp_path) / "eval.jsonl").exists()
    manifest = json.loads((data_dir(tmp_path) / "manifest.json").read_text())
    assert manifest["inputs"]["sources"][0]["answer_format_detected"] == "gsm8k"
    assert manifest["inputs"]["sources"][0]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()


def test_reports_gold_answers_math_verify_cannot_read(cli, make_preset, tmp_path):
    rows = [{"question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(12)]
    rows += [{"question": "Which shape is shown?", "answer": "see the figure above"},
             {"question": "List the roots.", "answer": "3, 4"}]  # a list, not 34 and not unreadable
    source = write_jsonl(tmp_path / "plain.jsonl", rows)
    preset = make_preset(data={"train": {"source": str(source)}})
    r = cli("prepare-data", preset, "--json")
    assert r.code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["train_rows"] == 14  # reported, not dropped: the rewards skip the row (None)
    assert summary["gold_unparseable"] == {"train": 1, "eval": 0}
    assert any("cannot read 1 of 14 gold answers" in w and "see the figure" in w for w in summary["warnings"])
    manifest = json.loads((data_dir(tmp_path) / "manifest.json").read_text())
    assert manifest["gold_unparseable"] == {"train": 1, "eval": 0}


def test_hub_loader_path_offline_with_a_packaged_builder(cli, make_preset, tmp_path):
    """`hf:json` runs the real datasets.load_dataset path (no network) with the same column mapping."""
    source = write_jsonl(tmp_path / "g.jsonl", gsm8k_rows(20))
    preset = make_preset(data={"train": {"source": "hf:json", "split": "train", "rows": 10,
                                         "args": {"data_files": str(source), "cache_dir": str(tmp_path / "hf")}}})
    summary = prepare(cli, preset)
    assert summary["train_rows"] == 10
    row = read_jsonl(data_dir(tmp_path) / "train.jsonl")[0]
    assert row["task"] == "math" and row["answer"].startswith("10") and row["solution"].startswith("He buys")


def test_math_style_boxed_file(cli, make_preset, tmp_path):
    rows = [{"problem": f"Compute {i}/2{i}.", "solution": f"Divide: $\\boxed{{\\frac{{1}}{{{i}}}}}$ done.",
             "level": f"Level {i % 5 + 1}", "long_note": "x" * 500} for i in range(1, 11)]
    source = write_jsonl(tmp_path / "math.jsonl", rows)
    preset = make_preset(data={"train": {"source": str(source), "question": "problem", "answer": "solution"}})
    prepare(cli, preset)
    train = read_jsonl(data_dir(tmp_path) / "train.jsonl")
    row = next(r for r in train if json.loads(r["meta"])["question"] == "Compute 3/23.")
    assert row["answer"] == "\\frac{1}{3}" and row["solution"] == rows[2]["solution"]
    assert json.loads(row["meta"])["fields"] == {"level": "Level 4"}  # short columns ride along, long ones don't


def test_csv_parquet_and_json_sources(cli, make_preset, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    with open(tmp_path / "a.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["q", "a"])
        writer.writeheader()
        writer.writerows({"q": f"csv question number {i}?", "a": str(i)} for i in range(8))
    pq.write_table(pa.table({"q": [f"parquet question {i}?" for i in range(6)], "a": list(range(6))}),
                   tmp_path / "b.parquet")
    (tmp_path / "c.json").write_text(json.dumps({"data": [{"q": f"json question {i}?", "a": i} for i in range(4)]}))
    spec = {"question": "q", "answer": "a", "task": "numeric"}
    preset = make_preset(data={"train": [{"source": str(tmp_path / name), **spec}
                                         for name in ("a.csv", "b.parquet", "c.json")]})
    summary = prepare(cli, preset)
    assert summary["by_source"]["train"] == {str(tmp_path / "a.csv"): 8, str(tmp_path / "b.parquet"): 6,
                                             str(tmp_path / "c.json"): 4}
    answers = {json.loads(r["meta"])["question"]: r["answer"] for r in read_jsonl(data_dir(tmp_path) / "train.jsonl")}
    assert answers["parquet question 4?"] == "4" and answers["csv question number 7?"] == "7"


def test_weighted_mixture_and_upsampling(cli, make_preset, tmp_path):
    source = write_jsonl(tmp_path / "small.jsonl", gsm8k_rows(10))
    preset = make_preset(data={"train": [{"source": "task:arithmetic", "weight": 3, "args": {"digits": 2}},
                                         {"source": str(source), "weight": 1}],
                               "train_rows": 60})
    summary = prepare(cli, preset)
    assert summary["by_source"]["train"] == {"task:arithmetic": 45, str(source): 15}
    assert any("repeating rows" in w for w in summary["warnings"])
    train = read_jsonl(data_dir(tmp_path) / "train.jsonl")
    assert len(train) == 60
    assert [r["task"] for r in train[:20]] != sorted(r["task"] for r in train[:20])  # shuffled, not grouped


def test_dedup_and_decontamination_counts(cli, make_preset, tmp_path):
    long_eval = "a farmer has seven cows and twelve sheep and each animal eats two bales of hay every single day"
    train = [{"question": "What is two plus two?", "answer": "4"},
             {"question": "what is two   plus two", "answer": "4"},  # normalized duplicate
             {"question": "What is two plus two?", "answer": "4"},  # exact duplicate
             {"question": "What is 12+34?", "answer": "46"},
             {"question": "What is 12-34?", "answer": "-22"},  # operators matter: not a duplicate
             {"question": "Eval leak: name the capital of France.", "answer": "Paris"},
             {"question": f"Story: {long_eval}. How many bales in a week?", "answer": "266"},  # 13-gram overlap
             {"question": "Benchmark leak: what is 6 times 7?", "answer": "42"},
             {"question": "A clean question about the number nine?", "answer": "9"}]
    evals = [{"question": "Eval leak: name the capital of France!", "answer": "Paris"},
             {"question": long_eval.capitalize() + ". How many bales per day?", "answer": "38"}]
    bench = write_jsonl(tmp_path / "bench.jsonl", [{"problem": "Benchmark leak: What is 6 times 7", "x": 1}])
    preset = make_preset(data={"train": {"source": str(write_jsonl(tmp_path / "tr.jsonl", train))},
                               "eval": {"source": str(write_jsonl(tmp_path / "ev.jsonl", evals))},
                               "decontaminate": {"benchmarks": [str(bench)]}})
    summary = prepare(cli, preset)
    assert summary["dropped"]["train"] == {"duplicate": 2, "contaminated": 3}
    manifest = json.loads((data_dir(tmp_path) / "manifest.json").read_text())
    bench_input = manifest["inputs"]["decontaminate_benchmarks"][0]
    assert bench_input["sha256"] == hashlib.sha256(bench.read_bytes()).hexdigest()
    kept = {json.loads(r["meta"])["question"] for r in read_jsonl(data_dir(tmp_path) / "train.jsonl")}
    assert kept == {"What is two plus two?", "What is 12+34?", "What is 12-34?",
                    "A clean question about the number nine?"}


def test_decontaminate_against_a_shipped_benchmark_name(cli, make_preset, tmp_path, monkeypatch):
    import rlr.data.shipped_benchmarks as benchmarks

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    bench = write_jsonl(tmp_path / "bench.jsonl", [{"problem": "What is two plus two?", "answer": "4"}])
    (shipped / "toybench.yaml").write_text(f"source: {bench}\nquestion: problem\nanswer: answer\n")
    monkeypatch.setattr(benchmarks, "benchmarks_dir", lambda: shipped)
    train = write_jsonl(tmp_path / "tr.jsonl", [{"question": "What is two plus two?", "answer": "4"},
                                                {"question": "What is three plus three?", "answer": "6"}])
    preset = make_preset(data={"train": {"source": str(train)}, "decontaminate": {"benchmarks": ["toybench"]}})
    assert prepare(cli, preset)["dropped"]["train"]["contaminated"] == 1


def test_eval_holdout(cli, make_preset, tmp_path):
    preset = make_preset(data={"train": {"source": "task:arithmetic", "rows": 50, "args": {"digits": 2}},
                               "eval_holdout": 10})
    summary = prepare(cli, preset)
    assert summary["train_rows"] == 40 and summary["eval_rows"] == 10
    assert summary["by_source"]["eval"] == {"holdout": 10}


def test_procedural_train_repeats_when_space_is_too_small(cli, make_preset, tmp_path):
    # digits=1 with '+' has 100 problems; 16 go to eval, so 200 train rows must repeat (and eval stays disjoint)
    preset = make_preset(data={"train": {"source": "task:arithmetic", "rows": 200, "args": {"digits": 1}},
                               "eval": {"source": "task:arithmetic", "rows": 16, "args": {"digits": 1}}})
    r = cli("prepare-data", preset, "--json")
    assert r.code == 0, r.stderr
    assert any("train rows will repeat" in w for w in json.loads(r.stdout)["warnings"])
    d = data_dir(tmp_path)
    train_q = [json.loads(x["meta"])["question"] for x in read_jsonl(d / "train.jsonl")]
    eval_q = {json.loads(x["meta"])["question"] for x in read_jsonl(d / "eval.jsonl")}
    assert len(train_q) == 200 and len(set(train_q)) <= 84 and eval_q.isdisjoint(train_q)


def test_same_preset_and_seed_give_identical_files(cli, make_preset, tmp_path):
    source = write_jsonl(tmp_path / "g.jsonl", gsm8k_rows(30))
    preset = make_preset(data={"train": [{"source": "task:arithmetic", "weight": 1, "args": {"digits": 2}},
                                         {"source": str(source), "weight": 1}],
                               "train_rows": 40, "eval_holdout": 5})
    first = prepare(cli, preset, f"run.output_dir={tmp_path / 'a'}")
    second = prepare(cli, preset, f"run.output_dir={tmp_path / 'b'}")
    assert first["sha256"] == second["sha256"]
    for name in ("train.jsonl", "eval.jsonl"):
        assert (tmp_path / "a/t/data" / name).read_bytes() == (tmp_path / "b/t/data" / name).read_bytes()
    third = prepare(cli, preset, f"run.output_dir={tmp_path / 'c'}", "run.seed=1")
    assert third["sha256"]["train.jsonl"] != first["sha256"]["train.jsonl"]


def test_completed_stage_is_not_overwritten_without_flag(cli, make_preset, tmp_path):
    preset = make_preset()
    prepare(cli, preset)
    d = data_dir(tmp_path)
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    r = cli("prepare-data", preset, "run.seed=5")
    assert r.code == 2 and "--overwrite" in r.stderr
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before
    summary = prepare(cli, preset, "run.seed=5", "--overwrite")
    assert summary["sha256"]["train.jsonl"] != hashlib.sha256(before["train.jsonl"]).hexdigest()


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[dict[str, Any], str]]:
    write_jsonl(tmp_path / "cols.jsonl", [{"prompt": "q?", "answer": "1"}])
    (tmp_path / "garbage.jsonl").write_bytes(b"\x00\x01\x02 not json\n\xff\xfe\n")
    (tmp_path / "fake.parquet").write_text("this is not parquet")
    (tmp_path / "empty.csv").write_text("")
    dup = write_jsonl(tmp_path / "dup.jsonl", [{"question": "Same question?", "answer": "1"}])
    return {
        "missing column": ({"train": {"source": str(tmp_path / "cols.jsonl")}},
                           "data.train[0].question: column 'question' not found"),
        "unknown source": ({"train": {"source": "s3:bucket/x.jsonl"}}, "no such file 's3:bucket/x.jsonl'"),
        "unreadable jsonl": ({"train": {"source": str(tmp_path / "garbage.jsonl")}}, "cannot read"),
        "unreadable parquet": ({"train": {"source": str(tmp_path / "fake.parquet")}}, "cannot read"),
        "empty file": ({"train": {"source": str(tmp_path / "empty.csv")}}, "holds no rows"),
        "empty after filtering": ({"train": {"source": str(dup)}, "eval": {"source": str(dup)}},
                                  "data.decontaminate left no train rows"),
        "hub offline": ({"train": {"source": "hf:rlr-test-org/not-cached-dataset", "config": "main"}},
                        "hf:rlr-test-org/not-cached-dataset is not in the local cache and HF_HUB_OFFLINE=1"),
        "hub bad split": ({"train": {"source": "hf:json", "split": "bogus",
                                     "args": {"data_files": str(dup), "cache_dir": str(tmp_path / "hf")}}},
                          "cannot load hf:json split bogus: Unknown split"),
        "unknown task": ({"train": {"source": "task:arithmatic"}}, "did you mean 'arithmetic'"),
        "benchmark offline": ({"train": {"source": str(dup)}, "decontaminate": {"benchmarks": ["gsm8k"]}},
                              "hf:openai/gsm8k is not in the local cache"),
    }


BAD_INPUTS = ["missing column", "unknown source", "unreadable jsonl", "unreadable parquet", "empty file",
              "empty after filtering", "hub offline", "hub bad split", "unknown task",
              "benchmark offline"]


def test_gym_source(cli, make_preset, tmp_path):
    preset = make_preset(data={"train": {"source": "gym:chain_sum", "rows": 8}})
    r = cli("prepare-data", preset, "--json")
    try:
        import reasoning_gym  # noqa: F401
    except ImportError:
        assert r.code == 2 and "pip install 'rlr[gym]'" in r.stderr
        assert not (tmp_path / "runs").exists()
        return
    assert r.code == 0, r.stderr
    assert {row["task"] for row in read_jsonl(data_dir(tmp_path) / "train.jsonl")} == {"gym:chain_sum"}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(cli, make_preset, tmp_path, case):
    data, expected = _bad_inputs(tmp_path)[case]
    r = cli("prepare-data", make_preset(data=data))
    assert r.code == 2, (r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert expected in r.stderr
    if case == "missing column":
        assert "columns: prompt, answer" in r.stderr and "set data.train[0].question" in r.stderr
    if case == "hub offline":
        assert "HF_HUB_OFFLINE=0" in r.stderr
    assert not (tmp_path / "runs").exists()


def test_max_prompt_tokens_uses_the_model_tokenizer(cli, make_preset, tmp_path, micro_model):
    rows = [{"question": "1+1=", "answer": "2"}, {"question": "word " * 60 + "?", "answer": "3"}]
    source = write_jsonl(tmp_path / "len.jsonl", rows)
    preset = make_preset(model=micro_model, data={"train": {"source": str(source)}, "max_prompt_tokens": 40})
    summary = prepare(cli, preset)
    assert summary["train_rows"] == 1 and summary["dropped"]["train"]["too_long"] == 1
    r = cli("prepare-data", preset, "data.max_prompt_tokens=2", "--overwrite")
    assert r.code == 2 and "data.max_prompt_tokens=2 left no train rows" in r.stderr


def test_difficulty_filter_writes_pass_rates(cli, make_preset, tmp_path, micro_model):
    preset = make_preset(model=micro_model, data={
        "train": {"source": "task:arithmetic", "rows": 4, "args": {"digits": 1}},
        "difficulty": {"enabled": True, "samples": 2, "min_pass": 0.0, "max_pass": 1.0, "max_new_tokens": 4}})
    summary = prepare(cli, preset)
    assert summary["train_rows"] == 4 and summary["dropped"]["train"]["pass_rate"] == 0
    rates = read_jsonl(data_dir(tmp_path) / "pass_rates.jsonl")
    assert len(rates) == 4 and all(0.0 <= r["pass_rate"] <= 1.0 and r["kept"] for r in rates)
    # a random micro model solves nothing: the default band keeps no prompt, and says which filter emptied it
    r = cli("prepare-data", preset, "data.difficulty.min_pass=0.5", "--overwrite")
    assert r.code == 2 and "data.difficulty left no train rows" in r.stderr


def test_warns_when_chat_template_opens_think(cli, make_preset, tmp_path, micro_model):
    from transformers import AutoTokenizer

    model = tmp_path / "thinker"
    shutil.copytree(micro_model, model)
    tok = AutoTokenizer.from_pretrained(model)
    tok.chat_template = tok.chat_template.replace("'<|im_start|>assistant\n'", "'<|im_start|>assistant\n<think>\n'")
    tok.save_pretrained(model)
    summary = prepare(cli, make_preset(model=model))
    assert any("already opens <think>" in w for w in summary["warnings"])
    manifest = json.loads((data_dir(tmp_path) / "manifest.json").read_text())
    assert manifest["warnings"] == summary["warnings"]
    plain = prepare(cli, make_preset(model=micro_model, name="plain"))
    assert plain["warnings"] == []


def test_dedup_modes_and_normalization_keep_operators():
    from rlr.data.filters import NgramIndex, dedup, normalize

    assert normalize("  What IS 2+3?\n") == "what is 2+3"
    assert normalize("12+34=") != normalize("12-34=") != normalize("1+234=")
    rows = [{"question": q} for q in ["Hi there.", "hi there", "Hi there.", "2+3=", "2-3="]]
    assert dedup(rows, "exact")[1] == 1 and dedup(rows, "normalized")[1] == 2 and dedup(rows, "none")[1] == 0
    assert dedup(rows, "normalized", protected={1, 2})[1] == 0  # repeats a user asked for are kept
    index = NgramIndex(3)
    index.add("2+3=")  # shorter than n: the whole question is the n-gram
    index.add("one two three four")
    assert index.freeze() == 0
    assert index.overlaps("2+3=") and index.overlaps("Two three four five") and not index.overlaps("3+2=")


def test_template_wording_shared_by_reference_questions_is_not_a_leak():
    from rlr.data.filters import NgramIndex, decontaminate

    tail = "use each number once and put the final equation in answer tags"
    reference = [f"Using {a} and {b} reach {a * b}: {tail}" for a, b in [(3, 7), (4, 9), (5, 11), (6, 13)]]
    index = NgramIndex(5)
    for question in reference:
        index.add(question)
    assert index.freeze() > 0  # the tail's 5-grams are in every reference question: template, not content
    assert not index.overlaps(f"Using 8 and 2 reach 16: {tail}")  # same template, other numbers: kept
    assert index.overlaps(f"Using 4 and 9 reach 36: {tail}")  # an eval question itself: dropped
    assert index.overlaps("First: Using 5 and 11 reach 55: use each")  # its content n-gram: dropped
    rows = [{"question": f"Using {a} and {b} reach {a * b}: {tail}"} for a, b in [(8, 2), (3, 7), (9, 9)]]
    kept, dropped = decontaminate(rows, reference, 5)
    assert dropped == 1 and [r["question"][:11] for r in kept] == ["Using 8 and", "Using 9 and"]


def test_the_countdown_preset_prepares_with_decontamination_on(cli, tmp_path):
    r = cli("prepare-data", "countdown/qwen2.5-1.5b-dapo", f"run.output_dir={tmp_path}/runs", "data.train.rows=200",
            "data.eval.rows=20", "data.max_prompt_tokens=null", "--json")
    assert r.code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["train_rows"] == 200 and summary["eval_rows"] == 20
    assert summary["dropped"]["train"]["contaminated"] == 0  # the generator keeps the splits disjoint already


def deepmath_rows(n: int, system: bool, start: int = 1) -> list[dict[str, Any]]:
    """trl-lib/DeepMath-103K's shape: `prompt` is a list of chat messages, `solution` the final answer."""
    head = [{"role": "system", "content": "Answer like a careful mathematician."}] if system else []
    return [{"prompt": [*head, {"role": "user", "content": f"What is {i} divided by {i + 1}?"}],
             "solution": f"\\frac{{{i}}}{{{i + 1}}}", "difficulty": 3.0} for i in range(start, start + n)]


def test_conversational_prompt_columns_are_used_as_messages(cli, make_preset, tmp_path, micro_model):
    """TRL's conversational `prompt` column (jsonl and parquet, with and without a system turn) becomes the prompt's
    messages, not its Python repr as the user turn; SFT and RL render it with the tokenizer's chat template."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer
    from trl.data_utils import maybe_apply_chat_template

    from rlr.config.load import load_config
    from rlr.data.prepared import load_split_dataset
    from rlr.train.sft_data import sft_dataset

    write_jsonl(tmp_path / "deepmath.jsonl", deepmath_rows(6, system=True))
    pq.write_table(pa.Table.from_pylist(deepmath_rows(4, system=False, start=20)), tmp_path / "deepmath.parquet")
    spec = {"question": "prompt", "answer": "solution"}
    preset = make_preset(model=micro_model, template={"system": "r1_think", "answer_format": "boxed"},
                         data={"train": [{"source": str(tmp_path / "deepmath.jsonl"), **spec},
                                         {"source": str(tmp_path / "deepmath.parquet"), **spec}],
                               "dedup": "none"})
    summary = prepare(cli, preset)
    assert summary["train_rows"] == 10 and summary["dropped"]["train"] == {"duplicate": 0, "contaminated": 0}
    rows = read_jsonl(data_dir(tmp_path) / "train.jsonl")
    by_question = {json.loads(r["meta"])["question"]: r for r in rows}
    own_system = by_question["What is 1 divided by 2?"]  # from the jsonl: its system turn is kept, not replaced
    assert own_system["prompt"] == [
        {"role": "system", "content": "Answer like a careful mathematician."},
        {"role": "user", "content": f"What is 1 divided by 2?\n{ANSWER_FORMATS['boxed']}"}]
    assert own_system["answer"] == "\\frac{1}{2}"
    no_system = [r for r in rows if len(r["prompt"]) == 2 and r["prompt"][0]["content"] == SYSTEM_PROMPTS["r1_think"]]
    assert len(no_system) == 4  # the parquet rows get the template's system prompt
    assert not any("'role'" in m["content"] for r in rows for m in r["prompt"])

    # With template system/answer_format none the conversation is kept verbatim; chat: false flattens it.
    jsonl = {"source": str(tmp_path / "deepmath.jsonl"), **spec}
    verbatim = make_preset(name="verbatim", model=micro_model, data={"train": jsonl})
    prepare(cli, verbatim)
    key = lambda rows: sorted(json.dumps(r["prompt"], sort_keys=True) for r in rows)  # noqa: E731
    assert key(read_jsonl(data_dir(tmp_path, "verbatim") / "train.jsonl")) == key(deepmath_rows(6, system=True))
    flat = make_preset(name="flat", template={"system": "none", "answer_format": "none", "chat": False},
                       data={"train": jsonl})
    prepare(cli, flat)
    prompts = {r["prompt"] for r in read_jsonl(data_dir(tmp_path, "flat") / "train.jsonl")}
    assert "Answer like a careful mathematician.\nUser: What is 1 divided by 2?\nAssistant:" in prompts

    # What the trainers see: SFT's prompt/completion pairs and GRPO's prompt, through the chat template.
    cfg = load_config(preset, []).cfg
    tokenizer = AutoTokenizer.from_pretrained(micro_model)
    rendered = [maybe_apply_chat_template({"prompt": r["prompt"]}, tokenizer)["prompt"]
                for r in load_split_dataset(cfg, "train")]
    assert sum("Answer like a careful mathematician." in text for text in rendered) == 6
    assert all(text.count("<|im_start|>user\nWhat is ") == 1 and "[{" not in text for text in rendered)
    pairs = sft_dataset(load_split_dataset(cfg, "train").map(lambda r: {"solution": r["answer"]}), cfg)
    assert pairs[0]["prompt"][-1]["role"] == "user" and pairs[0]["completion"][0]["role"] == "assistant"
    assert "<|im_start|>system\n" in maybe_apply_chat_template(pairs[0], tokenizer)["prompt"]


def test_conversational_prompts_through_the_hub_loader(cli, make_preset, tmp_path):
    """The same messages through datasets.load_dataset (`hf:json`, offline), as `hf:trl-lib/DeepMath-103K` loads."""
    source = write_jsonl(tmp_path / "deepmath.jsonl", deepmath_rows(5, system=True))
    preset = make_preset(template={"system": "r1_think", "answer_format": "boxed"},
                         data={"train": {"source": "hf:json", "split": "train", "question": "prompt",
                                         "answer": "solution",
                                         "args": {"data_files": str(source), "cache_dir": str(tmp_path / "hf")}}})
    assert prepare(cli, preset)["train_rows"] == 5
    for row in read_jsonl(data_dir(tmp_path) / "train.jsonl"):
        system, user = row["prompt"]
        assert system == {"role": "system", "content": "Answer like a careful mathematician."}
        assert user["role"] == "user" and user["content"].startswith("What is ") and "\\boxed{}" in user["content"]
