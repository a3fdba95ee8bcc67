"""What every procedural task shares: typed knobs, deterministic generation, answer extraction.

A task is a dataclass whose fields are its knobs (difficulty settings); each field carries a `help` string in
its metadata so the config layer and `--help` can show it. Generation uses a private `random.Random(seed)`, so a
call never touches global state and the same `(n, seed)` gives the same rows whatever ran before it.

Each task extracts its own answer instead of importing the shared extractor: it knows its own format (a number
after `</think>`, an equation in `<answer>` tags) and stays correct whatever the general extractor does.
"""

from __future__ import annotations

import dataclasses
import random
import re
import typing
from typing import Any, ClassVar, NamedTuple

from rlr.errors import UserError
from rlr.rewards.extract import last_boxed  # noqa: F401  (one boxed-answer parser for rewards and tasks)

#: How many draws in a row may come out duplicate or excluded before we decide the problem space is exhausted
#: (plus 10 per row found: drawing the last of N problems takes ~N tries, so a full space stays reachable).
MAX_CONSECUTIVE_MISSES = 10_000


class Knob(NamedTuple):
    """One task knob: its annotated type, default value and a one-line help text."""

    type: Any
    default: Any
    help: str


def knob(default: Any, help: str) -> Any:
    """A dataclass field with a help text; mutable defaults are copied per instance."""
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass
class ProceduralTask:
    """Base class: subclasses are dataclasses whose fields are knobs, and implement `make_row` and `verify`."""

    name: ClassVar[str] = ""
    #: the `task` its rows are scored as, when another verifier owns them (pyfunc's rows are `code` rows);
    #: None: the task itself
    scored_as: ClassVar[str | None] = None

    @classmethod
    def knobs(cls) -> dict[str, Knob]:
        """The knobs of this task, in declaration order."""
        hints = typing.get_type_hints(cls)  # resolves the string annotations of `from __future__ import annotations`
        out = {}
        for f in dataclasses.fields(cls):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            out[f.name] = Knob(hints[f.name], default, f.metadata.get("help", ""))
        return out

    def make_row(self, rng: random.Random) -> dict:
        """Draw one row `{"question", "answer", "solution", "meta"}` using only `rng`."""
        raise NotImplementedError

    def verify(self, completion: str, answer: str, meta: dict | None = None) -> float:
        """Score a completion in [0, 1] from the completion, the answer column and the meta column alone."""
        raise NotImplementedError

    def generate(self, n: int, seed: int, exclude: set[str] | None = None, unique: bool = True) -> list[dict]:
        """`n` rows, deterministic in `(n, seed, exclude)`; a shorter request is a prefix of a longer one.

        `exclude` is a set of question strings to skip: pass the eval questions when generating train rows and
        the two splits are disjoint whatever the seeds. With `unique` no question repeats within the call.
        Raises `UserError` when the knobs allow too few distinct problems for the request.
        """
        if n < 0:
            raise UserError(f"{self.name}: cannot generate {n} rows; ask for n >= 0")
        rng = random.Random(seed)
        rows: list[dict] = []
        seen: set[str] = set()
        skip = exclude or set()
        misses = 0
        while len(rows) < n:
            row = self.make_row(rng)
            q = row["question"]
            if q in skip or (unique and q in seen):
                misses += 1
                if misses > MAX_CONSECUTIVE_MISSES + 10 * len(seen):
                    raise UserError(
                        f"{self.name}: found only {len(rows)} distinct problems (asked for {n}) with knobs "
                        f"{dataclasses.asdict(self)}; ask for fewer rows, make the task harder, or allow repeats "
                        "(generate(..., unique=False))"
                    )
                continue
            misses = 0
            seen.add(q)
            rows.append(row)
        return rows


_NUMBER = re.compile(r"(?<![\d)])-?\d[\d,]*(?:\.\d+)?")
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def text_after_think(completion: str) -> str | None:
    """The text after the last `</think>`, or None when the completion has no closing think tag."""
    head, sep, tail = completion.rpartition("</think>")
    return tail if sep else None


def answer_tag(text: str) -> str | None:
    """The content of the last `<answer>...</answer>`, stripped."""
    found = _ANSWER_TAG.findall(text)
    return found[-1].strip() if found else None


def last_number(text: str) -> str | None:
    """The last number in `text` (thousands commas dropped); a minus right after a digit is an operator."""
    found = _NUMBER.findall(text)
    return found[-1].replace(",", "") if found else None
