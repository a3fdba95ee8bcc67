"""Reading one `data.train` / `data.eval` entry into raw rows `{question, answer, solution, task, meta}`.

Sources: `hf:<id>` (datasets.load_dataset), local jsonl/json/parquet/csv files, `task:<name>` procedural generators
and `gym:<name>` reasoning-gym environments. Files and hub data go through the same column mapping and answer
extraction, so a local file of GSM8K's shape behaves exactly like `hf:openai/gsm8k`.

Local files are read with the standard library (pyarrow for parquet) rather than `datasets`: at 100k rows the plain
loop is faster than `datasets.map` on two cores (measured in tests/bench/bench_data.py) and it writes nothing into
the HF cache. A row that cannot be used is never dropped silently: it is counted under a reason.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlr.config.schema import SourceSpec
from rlr.errors import UserError
from rlr.paths import resolve_data_path
from rlr.rewards.extract import last_boxed

DEFAULT_TASK_ROWS = 1000
FILE_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")


@dataclass
class SourceRows:
    """Rows of one source plus what was dropped while parsing it (reason -> count)."""

    name: str
    rows: list[dict[str, Any]]
    dropped: Counter[str] = field(default_factory=Counter)
    repeats: bool = False  # procedural rows generated with unique=False on purpose: dedup must keep them
    sha256: str | None = None  # content hash of a local file source
    warnings: list[str] = field(default_factory=list)  # for the manifest; the stage logs them
    answer_format: str | None = None  # what `auto` detected for this source


def source_key(split_role: str, index: int) -> str:
    return f"data.{split_role}[{index}]"


def load_source(spec: SourceSpec, *, seed: int, base_dir: Path, split_role: str = "train",
                exclude: set[str] | None = None, key: str | None = None, rows: int | None = None,
                num_proc: int | None = None) -> SourceRows:
    """The raw rows of `spec`. `exclude`: questions a procedural source must not generate (the eval split).

    `rows` overrides `spec.rows` (a weighted mixture computes it); `key` names the preset entry in errors;
    `num_proc` parallelises a hub dataset's download/preparation (the one place it pays, see bench_data.py).
    """
    key = key or source_key(split_role, 0)
    want = rows if rows is not None else spec.rows
    s = spec.source
    if s.startswith(("task:", "gym:")):
        return _procedural(spec, seed, split_role, exclude, want)
    if s.startswith("env:"):  # a shipped environment's own prompts (rlr/envs)
        from rlr.envs.registry import environment_rows

        rows = environment_rows(s.removeprefix("env:"), DEFAULT_TASK_ROWS if want is None else want, seed)
        for row in rows:
            row["task"] = spec.task or row["task"]
        return SourceRows(name=s, rows=rows, repeats=True)  # one prompt, many episodes: dedup must keep them
    if s.startswith("hf:"):
        records, columns, where = _hub_records(spec, num_proc)
        out = map_records(records, columns, spec, where=where, key=key)
    else:
        path = resolve_data_path(s, base_dir)
        if path is None:
            raise UserError(f"{key}.source: unknown source '{s}'; give a .jsonl/.json/.parquet/.csv path, "
                            "hf:<dataset id>, task:<name> or gym:<name>")
        records, columns = read_file(path, key)
        out = map_records(records, columns, spec, where=str(path), key=key)
        from rlr.files import file_sha256

        out.sha256 = file_sha256(path)
    if want is not None and want < len(out.rows):
        # A seeded sample in file order: a prefix would take only the easy/first chapter of many datasets.
        keep = sorted(random.Random(seed).sample(range(len(out.rows)), want))
        out.rows = [out.rows[i] for i in keep]
    return out


def _procedural(spec: SourceSpec, seed: int, split_role: str, exclude: set[str] | None, want: int | None
                ) -> SourceRows:
    from rlr.tasks import get_task

    name = spec.source.removeprefix("task:")  # gym:<name> is passed whole: rlr.tasks routes it
    task = get_task(name, **spec.args)
    n = DEFAULT_TASK_ROWS if want is None else want
    repeats, warning = False, ""
    try:
        generated = task.generate(n, seed, exclude=exclude, unique=True)
    except UserError:
        if split_role != "train":
            raise  # an eval split with repeats would overweight some problems in every metric
        warning = (f"{spec.source}: fewer than {n} distinct problems with these knobs; train rows will repeat "
                   "problems (ask for fewer rows or a harder setting to avoid it)")
        generated = task.generate(n, seed, exclude=exclude, unique=False)
        repeats = True
    task_name = spec.task or getattr(task, "scored_as", None) or name
    rows = [{"question": r["question"], "answer": str(r["answer"]), "solution": r.get("solution"),
             "task": task_name, "meta": r.get("meta") or {}} for r in generated]
    return SourceRows(name=spec.source, rows=rows, repeats=repeats, warnings=[warning] if repeats else [])


def _hub_records(spec: SourceSpec, num_proc: int | None) -> tuple[list[dict[str, Any]], list[str], str]:
    import datasets

    dataset_id = spec.source.removeprefix("hf:")
    where = f"hf:{dataset_id}" + (f" ({spec.config})" if spec.config else "") + f" split {spec.split}"
    quiet = not sys.stderr.isatty() and datasets.is_progress_bar_enabled()  # bars in a log file are noise
    if quiet:
        datasets.disable_progress_bars()
    try:
        extra = {"num_proc": num_proc} if num_proc and num_proc > 1 else {}
        ds = datasets.load_dataset(dataset_id, spec.config, split=spec.split, **extra, **spec.args)
    except Exception as e:  # datasets raises ConnectionError/FileNotFoundError/ValueError/DatasetNotFoundError
        offline = datasets.config.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true")
        if offline and isinstance(e, ConnectionError):  # not cached; a bad split of a cached set is a ValueError
            raise UserError(f"hf:{dataset_id} is not in the local cache and HF_HUB_OFFLINE=1: set HF_HUB_OFFLINE=0 "
                            "to download it once, or point source at a local file") from None
        first = str(e).splitlines()[0].rstrip(".") if str(e) else type(e).__name__
        raise UserError(f"cannot load {where}: {first}; check the dataset id, config: and split:") from None
    finally:
        if quiet:
            datasets.enable_progress_bars()
    return ds.to_list(), list(ds.column_names), where


def read_file(path: Path, key: str = "data.train[0]") -> tuple[list[dict[str, Any]], list[str]]:
    """Records and column names of a local file; unreadable, empty or unsupported files raise `UserError`."""
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise UserError(f"{key}.source: {path} has an unsupported type '{suffix}'; use {', '.join(FILE_SUFFIXES)}")
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            records = pq.read_table(path).to_pylist()
        elif suffix == ".csv":
            records = _csv_records(path)
        elif suffix == ".json":
            records = _json_records(json.loads(path.read_text(encoding="utf-8")), path)
        else:
            records = _jsonl_records(path)
    except UserError:
        raise
    except Exception as e:  # OSError, UnicodeDecodeError, pyarrow.ArrowInvalid, csv.Error, JSONDecodeError
        detail = getattr(e, "strerror", None) or (str(e).splitlines()[0] if str(e) else type(e).__name__)
        raise UserError(f"cannot read {path}: {detail}; check the file is valid {suffix[1:]}") from None
    if not records:
        raise UserError(f"{path} holds no rows; point {key}.source at a non-empty file")
    columns = list(dict.fromkeys(k for r in records[:100] if isinstance(r, dict) for k in r))
    return records, columns


_CSV_FIELD_LIMIT = 2**31 - 1  # the largest a C long holds everywhere csv runs


def _csv_records(path: Path) -> list[dict[str, Any]]:
    """Strict quoting: a lenient reader let one unterminated quote swallow the rest of the file into one field."""
    # csv's default field limit (131,072 characters) refused a long but usable question as a quoting error; an
    # oversized field is dropped as `too_long` by map_records, as in every other file type. The limit is global
    # state of the csv module, so it is restored for the caller.
    previous = csv.field_size_limit(_CSV_FIELD_LIMIT)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, strict=True)
        records: list[dict[str, Any]] = []
        try:
            for record in reader:
                records.append(record)
        except csv.Error as e:
            raise UserError(f"cannot read {path}: {e} in the record after data row {len(records)} (an unterminated "
                            "or stray quote?); quote fields that hold commas, quotes or newlines, doubling inner "
                            "quotes") from None
        finally:
            csv.field_size_limit(previous)
    short = sum(1 for r in records if None in r.values())
    if short:
        raise UserError(f"cannot read {path}: {short} row(s) have fewer fields than the header "
                        f"({', '.join(reader.fieldnames or [])}); fix the file's quoting or columns")
    return records


def _json_records(data: Any, path: Path) -> list[dict[str, Any]]:
    if isinstance(data, dict):  # {"data": [...]} or a column-oriented {"question": [...], "answer": [...]}
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(data) == 1 and lists:
            data = lists[0]
        elif lists and len(lists) == len(data) and len({len(v) for v in lists}) == 1:
            data = [dict(zip(data, values, strict=True)) for values in zip(*data.values(), strict=True)]
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a list of objects (or use .jsonl, one object per line)")
    return data


def _jsonl_records(path: Path) -> list[Any]:
    """One record per line; a bad line becomes an `_invalid` marker so it is counted, not lost."""
    records: list[Any] = []
    bad = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                bad += 1
                records.append(_INVALID)
    if records and bad == len(records):
        raise UserError(f"cannot read {path}: no line is valid JSON; check the file is JSON Lines")
    return records


_INVALID = object()


# Longer than any context window (about 250k tokens): such a row is a broken file, not a prompt.
MAX_FIELD_CHARS = 1_000_000


def map_records(records: list[Any], columns: list[str], spec: SourceSpec, *, where: str, key: str) -> SourceRows:
    """Column mapping + answer extraction for files and hub data (the one path both take)."""
    for role in ("question", "answer", "solution", "tests"):
        column = getattr(spec, role)
        if column is not None and column not in columns:
            raise UserError(f"{key}.{role}: column '{column}' not found in {where} (columns: {', '.join(columns)}); "
                            f"set {key}.{role} to the column holding the {role}")
    if spec.show_tests < 0 or (spec.show_tests and spec.tests is None):
        raise UserError(f"{key}.show_tests: {spec.show_tests} needs {key}.tests (the tests column) and a count >= 0")
    task = spec.task or ("code" if spec.tests else "math")
    used = {spec.question, spec.answer, spec.solution, spec.tests}
    out = SourceRows(name=spec.source, rows=[])
    answer_format = spec.answer_format
    if answer_format == "auto":
        answer_format = out.answer_format = detect_answer_format(
            _text(r.get(spec.answer)) for r in records[:200] if isinstance(r, dict))
    structured: dict[str, Any] = {}  # role -> an example list/dict value (a nested column, not text)
    longest = 0
    for i, record in enumerate(records):
        if record is _INVALID or not isinstance(record, dict):
            out.dropped["invalid_json"] += 1
            continue
        messages = chat_messages(record.get(spec.question))  # TRL's conversational `prompt`: kept as messages
        nested = [role for role in ("question", "answer") if isinstance(record.get(getattr(spec, role)),
                                                                       (list, dict))]
        if messages is not None:
            nested.remove("question")
        if nested:
            structured.setdefault(nested[0], record.get(getattr(spec, nested[0])))
            out.dropped[f"{nested[0]}_not_text"] += 1  # an answer [1, 2] was stored as the string '[1, 2]'
            continue
        question = _text(record.get(spec.question)) if messages is None else messages[-1]["content"].strip()
        if not question:
            out.dropped["empty_question"] += 1
            continue
        raw_answer = _text(record.get(spec.answer))
        if not raw_answer:
            out.dropped["empty_answer"] += 1
            continue
        # a conversational prompt is measured whole: a 10 MB system or few-shot turn is as broken as a question
        prompt_chars = len(question) if messages is None else sum(len(m["content"]) for m in messages)
        if max(prompt_chars, len(raw_answer)) > MAX_FIELD_CHARS:
            out.dropped["too_long"] += 1  # a 10 MB line would pass as one 10 MB prompt (and tokenize for minutes)
            longest = max(longest, prompt_chars, len(raw_answer))
            continue
        answer, solution, reason = extract_answer_field(raw_answer, answer_format)
        if answer is None:
            out.dropped[reason] += 1
            continue
        if spec.solution is not None:
            solution = _text(record.get(spec.solution)) or None
        meta: dict[str, Any] = {"source": spec.source, "index": i}
        if spec.tests is not None:
            tests = _test_list(record.get(spec.tests))
            if not tests:
                out.dropped["no_tests"] += 1
                continue
            meta["tests"] = tests  # what code_tests runs; the judge holds them, the code never sees them
            if spec.show_tests:
                shown = "\n".join(tests[: spec.show_tests])
                question = f"{question}\nYour code should pass these tests:\n{shown}"
                if messages is not None:  # the prompt is the messages: the tests go to their last user turn
                    messages[-1]["content"] = f"{messages[-1]['content'].rstrip()}\nYour code should pass these " \
                                              f"tests:\n{shown}"
        extras = {k: v for k, v in record.items() if k not in used and _short_scalar(v)}
        if extras:
            meta["fields"] = extras  # e.g. MATH's level/type: lets evaluate and reports slice by them
        row = {"question": question, "answer": answer, "solution": solution, "task": task, "meta": meta}
        if messages is not None:
            row["messages"] = messages
        out.rows.append(row)
    for role, example in structured.items():
        column = getattr(spec, role)
        kind = "lists" if isinstance(example, list) else "nested records"
        if role == "question" and isinstance(example, list):
            kind += " that are not chat messages ({role, content} with roles system/user/assistant, last one user)"
        text = repr(example) if len(repr(example)) <= 60 else repr(example)[:57] + "..."
        message = (f"{key}.{role}: column '{column}' of {where} holds {kind} (e.g. {text}), not text: "
                   f"{out.dropped[f'{role}_not_text']} of {len(records)} rows dropped")
        if not out.rows:
            raise UserError(f"{message}; flatten that column to text or point {key}.{role} at a text column")
        out.warnings.append(message)
    if out.dropped["too_long"]:
        message = (f"{key}: {out.dropped['too_long']} of {len(records)} rows of {where} hold a question or answer of "
                   f"over {MAX_FIELD_CHARS:,} characters (longest {longest:,}); no context window fits that")
        if not out.rows:
            raise UserError(f"{message}; check the file (a column of whole documents?) or point {key}.question at "
                            "the right column")
        out.warnings.append(message + ", so they were dropped (data.max_prompt_tokens filters by tokens)")
    if out.dropped["invalid_json"]:
        out.warnings.append(f"{key}: {out.dropped['invalid_json']} of {len(records)} lines of {where} are not valid "
                            "JSON objects (a truncated last line?) and were dropped")
    return out


_ROLES = ("system", "user", "assistant")


def chat_messages(value: Any) -> list[dict[str, str]] | None:
    """A conversational prompt (TRL's format: a list of `{role, content}`, ending in a user turn) as plain
    messages; None for anything else. Only role and content are kept: extra keys of some rows would give the
    prepared split a ragged schema."""
    if not isinstance(value, list) or not value:
        return None
    messages = []
    for message in value:
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            return None
        if not isinstance(message.get("content"), str):
            return None
        messages.append({"role": message["role"], "content": message["content"]})
    return messages if messages[-1]["role"] == "user" and messages[-1]["content"].strip() else None


def _test_list(value: Any) -> list[str]:
    """Test statements from a list column, a JSON list in a string, or one string of statements."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        value = parsed if isinstance(parsed, list) else [value]
    if not isinstance(value, list):
        return []
    return [str(t) for t in value if str(t).strip()]


def _short_scalar(value: Any) -> bool:
    """Small columns worth carrying in meta; long text (other solutions, passages) would bloat every row."""
    if isinstance(value, str):
        return len(value) <= 100
    return isinstance(value, (bool, int)) or (isinstance(value, float) and value == value)  # not NaN


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # parquet/pandas store integer answers as floats once a column has a null
    return str(value).strip()


def detect_answer_format(answers: Iterable[str]) -> str:
    """One format per source, from a sample of its rows: decided per row, a GSM8K row that lost its `####` would
    silently turn its whole worked solution into the ground-truth answer. Decided per source, it is dropped and
    counted as `no_gsm8k_answer`."""
    sample = [a for a in answers if a]
    if not sample:
        return "plain"
    if sum("####" in a for a in sample) * 2 > len(sample):
        return "gsm8k"
    if sum("\\boxed" in a or "\\fbox" in a for a in sample) * 2 > len(sample):
        return "boxed"
    return "plain"


_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def extract_answer_field(text: str, answer_format: str) -> tuple[str | None, str | None, str]:
    """(answer, solution, drop reason): gsm8k `... #### 42`, MATH `... \\boxed{42}`, plain, or auto-detected."""
    fmt = answer_format
    if fmt == "auto":
        fmt = "gsm8k" if "####" in text else "boxed" if ("\\boxed" in text or "\\fbox" in text) else "plain"
    if fmt == "gsm8k":
        head, sep, tail = text.rpartition("####")
        answer = tail.strip()
        if _THOUSANDS.fullmatch(answer):  # `1,000` is one number; `3, 4` stays a list (never merged into 34)
            answer = answer.replace(",", "")
        if not sep or not answer:
            return None, None, "no_gsm8k_answer"
        return answer, head.strip() or None, ""
    if fmt == "boxed":
        answer = last_boxed(text)
        if not answer:
            return None, None, "no_boxed_answer"
        return answer, text, ""
    return text, None, ""
