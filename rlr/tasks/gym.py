"""`gym:<name>`: the 100+ reasoning-gym generators as rlr tasks (optional extra `rlr[gym]`).

Scoring happens later and elsewhere (a reward worker, the evaluate stage), with only the row in hand. So each row
carries in `meta` the reasoning-gym entry (made JSON-safe) and the dataset config, and the verifier rebuilds the
dataset's own `score_answer` from them, once per process. reasoning-gym gives partial credit for some tasks
(e.g. 0.05 for a well-formed wrong countdown answer); we pass its score through, clamped to [0, 1].

Answers are read from the last `<answer>` tag, as reasoning-gym's own prompts ask, else the text after
`</think>`; a completion with neither is scored as "no answer" by reasoning-gym's rules.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from rlr.errors import UserError
from rlr.tasks.base import MAX_CONSECUTIVE_MISSES, Knob, ProceduralTask, answer_tag, text_after_think

log = logging.getLogger(__name__)

INSTALL_HINT = "install the optional extra: pip install 'rlr[gym]'"


def import_reasoning_gym() -> Any:
    try:
        import reasoning_gym
    except ImportError as e:
        raise UserError(f"gym: tasks need the reasoning-gym package; {INSTALL_HINT}") from e
    return reasoning_gym


def gym_names() -> list[str]:
    """Names of the registered reasoning-gym datasets."""
    import_reasoning_gym()
    from reasoning_gym.factory import DATASETS

    return sorted(DATASETS)


def gym_knobs(name: str) -> dict[str, Knob]:
    """The config fields of a reasoning-gym dataset (seed and size are set by rlr, so they are not knobs)."""
    import_reasoning_gym()
    from reasoning_gym.factory import DATASETS

    check_gym_name(name)
    config_cls = DATASETS[name][1]
    return {
        f.name: Knob(f.type, f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default, "")
        for f in dataclasses.fields(config_cls)
        if f.name not in ("seed", "size")
    }


def check_gym_name(name: str) -> None:
    """Raise `UserError` (with a suggestion) unless reasoning-gym is installed and knows `name`."""
    import difflib

    import_reasoning_gym()

    from reasoning_gym.factory import DATASETS

    if name not in DATASETS:
        close = difflib.get_close_matches(name, list(DATASETS), n=3)
        hint = f"; did you mean {', '.join('gym:' + c for c in close)}?" if close else ""
        raise UserError(f"unknown reasoning-gym task 'gym:{name}'{hint} (see reasoning_gym.factory.DATASETS)")


def _jsonable(x: Any) -> Any:
    """A JSON-serializable copy: tuples/sets become lists, numpy values plain Python, anything else its str."""
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (set, frozenset)):
        items = [_jsonable(v) for v in x]
        try:
            return sorted(items)
        except TypeError:
            return items
    if hasattr(x, "tolist"):  # numpy arrays and scalars
        return _jsonable(x.tolist())
    return str(x)


@dataclasses.dataclass
class GymTask(ProceduralTask):
    """A reasoning-gym dataset: `gym_name` is the registered name, `config` its dataset config fields."""

    gym_name: str = ""
    config: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        import_reasoning_gym()
        check_gym_name(self.gym_name)
        self.name = f"gym:{self.gym_name}"
        self._dataset(1, 0)  # fail now, with the knob named, rather than mid-run

    def _dataset(self, size: int, seed: int) -> Any:
        import reasoning_gym

        try:
            return reasoning_gym.create_dataset(self.gym_name, size=size, seed=seed, **self.config)
        except (TypeError, ValueError, AssertionError) as e:
            valid = ", ".join(gym_knobs(self.gym_name))
            raise UserError(f"{self.name}: bad config {self.config}: {e}; valid knobs: {valid}") from e

    def generate(self, n: int, seed: int, exclude: set[str] | None = None, unique: bool = True) -> list[dict]:
        """`n` rows from reasoning-gym with `seed`; `exclude`/`unique` skip questions as in `ProceduralTask`.

        reasoning-gym derives item i from (seed, i), so the plain request is exactly `create_dataset(size=n)`;
        when skipping we read further into a larger dataset of the same seed.
        """
        if n < 0:
            raise UserError(f"{self.name}: cannot generate {n} rows; ask for n >= 0")
        skipping = bool(exclude) or unique
        size = n + MAX_CONSECUTIVE_MISSES if skipping else n
        ds = self._dataset(max(size, 1), seed)
        skip = exclude or set()
        rows: list[dict] = []
        seen: set[str] = set()
        for i in range(size):
            if len(rows) == n:
                break
            entry = ds[i]
            q = entry["question"]
            if q in skip or (unique and q in seen):
                continue
            seen.add(q)
            answer = entry.get("answer")
            rows.append(
                {
                    "question": q,
                    "answer": "" if answer is None else str(answer),
                    "solution": None,
                    "meta": {"gym": self.gym_name, "config": _jsonable(self.config), "entry": _jsonable(entry)},
                }
            )
        if len(rows) < n:
            raise UserError(
                f"{self.name}: found only {len(rows)} distinct problems (asked for {n}); "
                "ask for fewer rows or change the task config"
            )
        return rows

    def verify(self, completion: str, answer: str, meta: dict | None = None) -> float:
        return score_gym(self.gym_name, completion, answer, meta)


def score_gym(gym_name: str, completion: str, answer: str, meta: dict | None) -> float:
    """reasoning-gym's score for `completion`, rebuilt from the row alone; 0.0 if the scorer raises."""
    meta = meta or {}
    entry = meta.get("entry") or {"question": "", "answer": answer, "metadata": meta.get("metadata", {})}
    extracted = answer_tag(completion)
    if extracted is None:
        after = text_after_think(completion)
        extracted = after.strip() if after is not None else None
    scorer = _scorer(meta.get("gym", gym_name), json.dumps(meta.get("config", {}), sort_keys=True))
    try:
        score = float(scorer(extracted, entry))
    except Exception:  # a scorer bug on odd model output must not kill a training run
        log.debug("reasoning-gym scorer for %s raised on %r", gym_name, extracted, exc_info=True)
        return 0.0
    return min(1.0, max(0.0, score))


@functools.lru_cache(maxsize=64)
def _scorer(gym_name: str, config_json: str) -> Callable[[str | None, dict], float]:
    """The dataset's bound `score_answer`, built once per (name, config) per process."""
    reasoning_gym = import_reasoning_gym()
    config = json.loads(config_json)
    try:
        return reasoning_gym.create_dataset(gym_name, size=1, seed=0, **config).score_answer
    except Exception:  # a config that no longer round-trips (tuples became lists): use the default config
        return reasoning_gym.get_score_answer_fn(gym_name)
