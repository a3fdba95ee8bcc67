"""The bad-input corpus (issue 20): every case exits 2 with one `error:` line naming the file, key or column, shows no
traceback and writes nothing. Each case is a preset edit, extra files, and the command that must refuse it."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

BASE: dict[str, Any] = {
    "run": {"name": "bad", "output_dir": "runs", "seed": 0},
    "model": {"name_or_path": "MODEL"},
    "template": {"system": "none", "answer_format": "none"},
    "data": {"train": {"source": "task:arithmetic", "rows": 16, "args": {"digits": 1}},
             "eval": {"source": "task:arithmetic", "rows": 8, "args": {"digits": 1}}},
    "rewards": [{"name": "accuracy"}],
    "sft": {"use_lora": False, "trainer": {"max_steps": 2, "per_device_train_batch_size": 4}},
    "rl": {"trainer": {"max_steps": 2, "per_device_train_batch_size": 4, "num_generations": 4}},
}

QA = [{"question": f"{i}+1=", "answer": str(i + 1)} for i in range(8)]


def jsonl(rows: list[Any]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def billion_laughs() -> str:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        prev, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 10) + "]")
    return "\n".join(lines) + "\nrun: {name: bomb}\n"


# name -> (raw preset text, or None to dump `edit` applied to BASE; edit; extra files; argv after the preset;
#          expected text in the error line). The command defaults to prepare-data, the first stage that writes.
def case(text: str | None = None, edit: dict[str, Any] | None = None, files: dict[str, str | bytes] | None = None,
         argv: tuple[str, ...] = ("prepare-data",), expect: str = "", preset_arg: str | None = None) -> tuple:
    return (text, edit or {}, files or {}, argv, expect, preset_arg)


CASES: dict[str, tuple] = {
    # --- the preset file itself ---
    "binary": case(text="\x00\x01\x02\xff\xfe", expect="is not UTF-8 text"),
    "directory": case(preset_arg="somedir", files={"somedir/x.txt": "x"}, expect="is a directory, not a preset"),
    "missing": case(preset_arg="nope.yaml", expect="preset not found: nope.yaml"),
    "empty": case(text="", expect="run.name: required"),
    "a_list": case(text="- 1\n- 2\n", expect="bad.yaml"),
    "a_scalar": case(text="hello\n", expect="bad.yaml"),
    "invalid_yaml": case(text="run: {name: x\n", expect="invalid YAML in"),
    "alias_bomb": case(text=billion_laughs(), expect="a:"),
    "python_tag": case(text="run: !!python/object/apply:os.system ['true']\n", expect="invalid YAML in"),
    "extends_missing": case(edit={"extends": ["nowhere.yaml"]}, expect="nowhere.yaml"),
    "extends_cycle": case(edit={"extends": ["loop.yaml"]}, files={"loop.yaml": "extends: [bad.yaml]\n"},
                          expect="extends cycle"),
    "unicode_key": case(edit={"rün": {"name": "x"}}, expect="rün"),
    "unknown_section": case(edit={"trainer": {"lr": 1}}, expect="trainer"),
    "unknown_key": case(edit={"run": {"name": "bad", "nmae": "x"}}, expect="run.nmae"),
    "override_empty_value": case(argv=("prepare-data", "run.name="), expect="run.name"),
    "override_no_key": case(argv=("prepare-data", "=1"), expect="=1"),
    "override_two_equals": case(argv=("prepare-data", "run.seed=1=2"), expect="run.seed"),
    "override_no_equals": case(argv=("prepare-data", "run.seed"), expect="run.seed"),
    "override_unknown_key": case(argv=("validate", "sft.trainer.learnin_rate=1"),
                                 expect="sft.trainer.learnin_rate"),
    "seed_not_int": case(argv=("prepare-data", "run.seed=abc"), expect="run.seed"),
    "run_name_escapes": case(argv=("prepare-data", "run.name=../../escaped"), expect="not a plain directory name"),
    "run_name_absolute": case(argv=("prepare-data", "run.name=/tmp/x"), expect="not a plain directory name"),
    "no_model": case(argv=("prepare-data", "model.name_or_path="), expect="model.name_or_path"),
    "unknown_algorithm": case(argv=("validate", "rl.algorithm=ppo2"), expect="rl.algorithm"),
    "band_reversed": case(argv=("prepare-data", "pipeline.rl_band=[0.7,0.3]"), expect="pipeline.rl_band"),
    "unknown_task": case(argv=("prepare-data", "data.train.source=task:nonexistent"), expect="data.train"),
    "unknown_task_knob": case(edit={"data": {"train": {"source": "task:arithmetic", "rows": 4, "args": {"digts": 1}}}},
                              expect="digts"),
    "bad_task_knob": case(edit={"data": {"train": {"source": "task:arithmetic", "rows": 4, "args": {"digits": 0}}}},
                          expect="digits"),
    # --- sizes ---
    "sft_batch_zero": case(argv=("validate", "sft.trainer.per_device_train_batch_size=0"),
                           expect="sft.trainer.per_device_train_batch_size"),
    "sft_batch_negative": case(argv=("validate", "sft.trainer.per_device_train_batch_size=-4"),
                               expect="sft.trainer.per_device_train_batch_size"),
    "rl_batch_zero": case(argv=("validate", "rl.trainer.per_device_train_batch_size=0"),
                          expect="rl.trainer.per_device_train_batch_size"),
    "generations_zero": case(argv=("validate", "rl.trainer.num_generations=0"), expect="rl.trainer.num_generations"),
    "generations_negative": case(argv=("validate", "rl.trainer.num_generations=-2"),
                                 expect="rl.trainer.num_generations"),
    "generations_not_dividing": case(argv=("validate", "rl.trainer.num_generations=3"), expect="rl.trainer"),
    "steps_zero": case(argv=("validate", "sft.trainer.max_steps=0"), expect="sft.trainer.max_steps"),
    "steps_negative": case(argv=("validate", "rl.trainer.max_steps=-5"), expect="rl.trainer.max_steps"),
    "completion_length_zero": case(argv=("validate", "rl.trainer.max_completion_length=0"),
                                   expect="rl.trainer.max_completion_length"),
    "learning_rate_text": case(argv=("validate", "rl.trainer.learning_rate=fast"), expect="rl.trainer.learning_rate"),
    "grad_accum_zero": case(argv=("validate", "sft.trainer.gradient_accumulation_steps=0"),
                            expect="sft.trainer.gradient_accumulation_steps"),
    "eval_k_above_samples": case(argv=("prepare-data", "eval.k=[4]"), expect="eval.k"),
    "stop_at_value": case(argv=("validate", "sft.stop_at.value=3"), expect="sft.stop_at.value"),
    "owned_key": case(argv=("validate", "rl.trainer.output_dir=/tmp/x"), expect="rl.trainer.output_dir"),
    # --- data files ---
    "data_missing_file": case(edit={"data": {"train": {"source": "nope.jsonl"}}}, expect="nope.jsonl"),
    "data_directory": case(edit={"data": {"train": {"source": "adir"}}}, files={"adir/a.jsonl": jsonl(QA)},
                           expect="adir"),
    "data_bad_suffix": case(edit={"data": {"train": {"source": "rows.txt"}}}, files={"rows.txt": "1+1=,2\n"},
                            expect="rows.txt"),
    "data_empty": case(edit={"data": {"train": {"source": "rows.jsonl"}}}, files={"rows.jsonl": ""},
                       expect="rows.jsonl"),
    "data_not_utf8": case(edit={"data": {"train": {"source": "rows.jsonl"}}},
                          files={"rows.jsonl": b'{"question": "\xff\xfe", "answer": "1"}\n'}, expect="rows.jsonl"),
    "data_all_lines_invalid": case(edit={"data": {"train": {"source": "rows.jsonl"}}},
                                   files={"rows.jsonl": "not json\nstill not\n"}, expect="rows.jsonl"),
    "data_show_tests_without_tests": case(edit={"data": {"train": {"source": "rows.jsonl", "show_tests": 1}}},
                                          files={"rows.jsonl": jsonl(QA)}, expect="data.train[0].show_tests"),
    "data_missing_tests_column": case(edit={"data": {"train": {"source": "rows.jsonl", "tests": "test_list"}}},
                                      files={"rows.jsonl": jsonl(QA)}, expect="data.train[0].tests"),
    "data_messages_ending_in_assistant": case(
        edit={"data": {"train": {"source": "rows.jsonl"}}},
        files={"rows.jsonl": jsonl([{"question": [{"role": "user", "content": "1+1="},
                                                  {"role": "assistant", "content": "2"}], "answer": "2"}])},
        expect="not chat messages"),
    "data_missing_question_column": case(edit={"data": {"train": {"source": "rows.jsonl", "question": "problem"}}},
                                         files={"rows.jsonl": jsonl(QA)}, expect="data.train[0].question"),
    "data_missing_answer_column": case(edit={"data": {"train": {"source": "rows.jsonl", "answer": "solution_x"}}},
                                       files={"rows.jsonl": jsonl(QA)}, expect="data.train[0].answer"),
    "data_answers_all_lists": case(edit={"data": {"train": {"source": "rows.jsonl"}}},
                                   files={"rows.jsonl": jsonl([{"question": "q", "answer": [1, 2]}] * 4)},
                                   expect="data.train[0].answer"),
    "data_answers_all_null": case(edit={"data": {"train": {"source": "rows.jsonl"}}},
                                  files={"rows.jsonl": jsonl([{"question": "q", "answer": None}] * 4)},
                                  expect="rows.jsonl"),
    "data_json_not_a_list": case(edit={"data": {"train": {"source": "rows.json"}}}, files={"rows.json": '"text"'},
                                 expect="rows.json"),
    "data_json_invalid": case(edit={"data": {"train": {"source": "rows.json"}}}, files={"rows.json": "[{"},
                              expect="rows.json"),
    "data_csv_unterminated_quote": case(edit={"data": {"train": {"source": "rows.csv"}}},
                                        files={"rows.csv": 'question,answer\n"1+1=,2\n2+2=,4\n'}, expect="rows.csv"),
    "data_csv_short_row": case(edit={"data": {"train": {"source": "rows.csv"}}},
                               files={"rows.csv": "question,answer\n1+1=\n"}, expect="rows.csv"),
    "data_csv_header_only": case(edit={"data": {"train": {"source": "rows.csv"}}},
                                 files={"rows.csv": "question,answer\n"}, expect="rows.csv"),
    # --- rewards ---
    "reward_unknown": case(argv=("validate",), edit={"rewards": [{"name": "accurcy"}]}, expect="rewards[0].name"),
    "reward_missing_file": case(argv=("validate",), edit={"rewards": [{"name": "nofile.py:f"}]},
                                expect="rewards[0].name"),
    "reward_missing_function": case(argv=("validate",), edit={"rewards": [{"name": "r.py:nope"}]},
                                    files={"r.py": "def f(completions, **kw):\n    return [0.0] * len(completions)\n"},
                                    expect="rewards[0].name"),
    "reward_bad_signature": case(argv=("validate",), edit={"rewards": [{"name": "r.py:f"}]},
                                 files={"r.py": "def f(x):\n    return x\n"}, expect="rewards[0].name"),
    "reward_import_raises": case(argv=("validate",), edit={"rewards": [{"name": "r.py:f"}]},
                                 files={"r.py": "raise RuntimeError('boom')\n"}, expect="rewards[0].name"),
    "reward_weight_text": case(argv=("validate",), edit={"rewards": [{"name": "accuracy", "weight": "heavy"}]},
                               expect="rewards[0].weight"),
    "reward_args_not_mapping": case(argv=("validate",), edit={"rewards": [{"name": "cosine", "args": [1, 2]}]},
                                    expect="rewards[0].args"),
    "reward_unknown_arg": case(argv=("validate",), edit={"rewards": [{"name": "cosine", "args": {"max_lenn": 3}}]},
                               expect="rewards[0].args"),
    "reward_arg_wrong_type": case(argv=("validate",),
                                  edit={"rewards": [{"name": "math_accuracy", "args": {"timeout_s": "fast"}}]},
                                  expect="rewards[0].args.timeout_s"),
    "reward_timeout_text": case(argv=("validate",), edit={"rewards": [{"name": "accuracy", "timeout_s": "long"}]},
                                expect="rewards[0].timeout_s"),
    "no_rewards_for_rl": case(argv=("validate",), edit={"rewards": []}, expect="rewards"),
    # --- gates ---
    "gate_garbage": case(argv=("evaluate", "--min", "garbage"), expect="--min 'garbage' is malformed"),
    "gate_value_text": case(argv=("evaluate", "--min", "eval.pass@1=high"), expect="is malformed"),
    "gate_value_nan": case(argv=("evaluate", "--min", "eval.pass@1=nan"), expect="is malformed"),
    "gate_unknown_benchmark": case(argv=("evaluate", "--min", "gsm9k.pass@1=0.5"), expect="benchmark 'gsm9k'"),
    "gate_unknown_metric": case(argv=("evaluate", "--min", "eval.pass@7=0.5"), expect="unknown metric 'pass@7'"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(name, cli, tmp_path, micro_model, monkeypatch):
    text, edit, files, argv, expect, preset_arg = CASES[name]
    monkeypatch.chdir(tmp_path)
    for rel, content in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    preset = tmp_path / "bad.yaml"
    if text is not None:
        preset.write_text(text, encoding="utf-8", errors="surrogateescape") if "\xff" not in text else \
            preset.write_bytes(text.encode("latin-1"))
    else:
        data = json.loads(json.dumps(BASE).replace('"MODEL"', json.dumps(str(micro_model))))
        data.update(edit)
        preset.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    command, *rest = argv
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    r = cli(command, preset_arg or str(preset), *rest)
    assert r.code == 2, (r.code, r.stderr[-1500:])
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expect in r.stderr, r.stderr[-1500:]
    assert "Traceback" not in r.stderr
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "__pycache__" not in p.parts)
    assert after == [p for p in before if "__pycache__" not in p.parts], "something was written"


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 60
