"""Data files that used to be accepted silently (issue 21): each now gives an error or a warning with counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def data_preset(make_preset, tmp_path: Path, source: Path) -> Path:
    return make_preset("some/model", data={"train": {"source": str(source)}})


def test_a_list_answer_and_a_truncated_last_line_are_dropped_and_counted_aloud(cli, make_preset, tmp_path):
    source = tmp_path / "rows.jsonl"
    source.write_text('{"question": "1+1=", "answer": "2"}\n{"question": "2+2=", "answer": [1, 2]}\n'
                      '{"question": "3+3=", "answer": "6"}\n{"question": "4+4=", "ans')
    r = cli("prepare-data", data_preset(make_preset, tmp_path, source), "--json")
    assert r.code == 0, r.stderr
    summary = json.loads(r.stdout)
    warnings = " | ".join(summary["warnings"])  # the same lines go to stderr as `warning: ...`
    assert "column 'answer' of" in warnings and "holds lists (e.g. [1, 2]), not text: 1 of 4 rows dropped" in warnings
    assert "1 of 4 lines of" in warnings and "not valid JSON objects (a truncated last line?)" in warnings
    assert summary["train_rows"] == 2
    dropped = summary["dropped"]["train"]
    assert dropped["answer_not_text"] == 1 and dropped["invalid_json"] == 1
    rows = [json.loads(line) for line in (tmp_path / "runs/t/data/train.jsonl").read_text().splitlines()]
    assert sorted(row["answer"] for row in rows) == ["2", "6"]  # no '[1, 2]' stored as a string


def test_a_nested_parquet_column_is_refused_naming_it(cli, make_preset, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"question": [{"text": "1+1="}, {"text": "2+2="}], "answer": ["2", "4"]}), source)
    r = cli("prepare-data", data_preset(make_preset, tmp_path, source))
    assert r.code == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "data.train[0].question: column 'question'" in errors[0]
    assert "holds nested records (e.g. {'text': '1+1='})" in errors[0] and "flatten that column" in errors[0]
    assert not (tmp_path / "runs/t/data").exists()


@pytest.mark.parametrize(("text", "expected"), [
    ('question,answer\n"1+1=,2\n2+2=,4\n3+3=,6\n', "unexpected end of data in the record after data row 0"),
    ("question,answer\n1+1=\n2+2=,4\n", "1 row(s) have fewer fields than the header (question, answer)"),
])
def test_a_malformed_csv_is_refused_instead_of_swallowed(text, expected, cli, make_preset, tmp_path):
    source = tmp_path / "rows.csv"
    source.write_text(text)
    r = cli("prepare-data", data_preset(make_preset, tmp_path, source))
    assert r.code == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0] and str(source) in errors[0], r.stderr
    assert not (tmp_path / "runs/t/data").exists()


def test_a_10_mb_line_is_dropped_and_counted_not_turned_into_a_prompt(cli, make_preset, tmp_path):
    source = tmp_path / "rows.jsonl"
    with source.open("w") as f:
        f.write(json.dumps({"question": "1+1=", "answer": "2"}) + "\n")
        f.write(json.dumps({"question": "x" * 10_000_000, "answer": "3"}) + "\n")
        f.write(json.dumps({"question": "2+2=", "answer": "4"}) + "\n")
    r = cli("prepare-data", data_preset(make_preset, tmp_path, source), "--json")
    assert r.code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["train_rows"] == 2 and summary["dropped"]["train"]["too_long"] == 1
    assert any("1 of 3 rows of" in w and "over 1,000,000 characters (longest 10,000,000)" in w
               for w in summary["warnings"])
    assert (tmp_path / "runs/t/data/train.jsonl").stat().st_size < 10_000


def test_a_file_of_only_oversized_rows_is_refused(cli, make_preset, tmp_path):
    source = tmp_path / "rows.jsonl"
    source.write_text(json.dumps({"question": "x" * 1_000_001, "answer": "3"}) + "\n")
    r = cli("prepare-data", data_preset(make_preset, tmp_path, source))
    assert r.code == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "over 1,000,000 characters" in errors[0] and "data.train[0].question" in errors[0]
    assert not (tmp_path / "runs/t/data").exists()


@pytest.mark.parametrize(("size", "kept", "too_long"), [(200_000, 3, 0), (2_000_000, 2, 1)])
def test_a_csv_field_over_128k_is_read_like_a_jsonl_one(size, kept, too_long, cli, make_preset, tmp_path):
    """Python's csv reader refuses fields over 131,072 characters by default; a CSV row is held to the same
    1,000,000-character rule as every other file, not refused as a quoting error."""
    import csv

    source = tmp_path / "rows.csv"
    with source.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerows([("question", "answer"), ("1+1=", "2"), ("x" * size, "3"), ("2+2=", "4")])
    r = cli("prepare-data", data_preset(make_preset, tmp_path, source), "--json")
    assert r.code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["train_rows"] == kept and summary["dropped"]["train"].get("too_long", 0) == too_long
    assert csv.field_size_limit() == 131_072  # rlr's larger limit does not leak into the caller's csv module


def test_a_10_mb_turn_anywhere_in_a_conversational_prompt_is_dropped(cli, make_preset, tmp_path):
    """The size rule holds for the whole prompt, not only its last user turn: a 10 MB system or few-shot turn
    would otherwise be stored and tokenized as part of every epoch's prompt."""
    source = tmp_path / "chat.jsonl"
    turns = lambda system: [{"role": "system", "content": system}, {"role": "user", "content": "1+1="}]  # noqa: E731
    with source.open("w") as f:
        f.write(json.dumps({"prompt": turns("Be brief."), "solution": "2"}) + "\n")
        f.write(json.dumps({"prompt": turns("x" * 10_000_000), "solution": "2"}) + "\n")
    preset = make_preset("some/model", data={"train": {"source": str(source), "question": "prompt",
                                                       "answer": "solution"}})
    r = cli("prepare-data", preset, "--json")
    assert r.code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["train_rows"] == 1 and summary["dropped"]["train"]["too_long"] == 1
    assert (tmp_path / "runs/t/data/train.jsonl").stat().st_size < 10_000


def test_show_tests_reaches_a_conversational_prompt(cli, make_preset, tmp_path):
    """`show_tests: N` appends the tests to the question; with a conversational prompt column the prompt is the
    messages, so the tests went nowhere (the model was never told the function's name)."""
    source = tmp_path / "code.jsonl"
    source.write_text(json.dumps({"prompt": [{"role": "user", "content": "Write a function that doubles x."}],
                                  "code": "def double(x):\n    return 2 * x",
                                  "test_list": ["assert double(2) == 4", "assert double(0) == 0"]}) + "\n")
    preset = make_preset("some/model", template={"system": "none", "answer_format": "none", "chat": True},
                         data={"train": {"source": str(source), "question": "prompt", "answer": "code",
                                         "solution": "code", "tests": "test_list", "show_tests": 1}})
    r = cli("prepare-data", preset)
    assert r.code == 0, r.stderr
    row = json.loads((tmp_path / "runs/t/data/train.jsonl").read_text().splitlines()[0])
    assert row["prompt"][-1]["content"].endswith("Your code should pass these tests:\nassert double(2) == 4")
