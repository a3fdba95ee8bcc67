"""What counts as correct, before and after issue 14, side by side in one process: agreement with Math-Verify's own
test suite, wrong answers paid on the adversarial set, and CPU time per item (short and long completions).

Run with `python tests/bench/bench_math_definition.py`; prints a markdown table. "Before" is rlr's previous
definition (hand-written extractor, then math-verify with a `first_match` retry), kept here, compactly, only as the
baseline; "after" is `rlr.rewards.math_check.verify_math`. Both run in this process without a timeout.
"""

from __future__ import annotations

import json
import logging
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # runs from a checkout without installing rlr

from math_verify import parse, verify  # noqa: E402

from rlr.rewards.extract import last_boxed  # noqa: E402
from rlr.rewards.math_check import verify_math  # noqa: E402
from rlr.rewards.math_extract import MathSettings  # noqa: E402

logging.getLogger("math_verify").setLevel(logging.ERROR)
DATA = ROOT / "tests" / "data"

# --- the baseline: rlr's definition before issue 14 (rlr/rewards/extract.py + math_check.py at 5388943) ---------
_THE_ANSWER_IS = re.compile(r"answer is[:\s]*([^\n]+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def _old_strip(candidate: str) -> str:
    candidate = candidate.strip().rstrip(".").strip()
    if candidate.startswith("$") and candidate.endswith("$") and len(candidate) > 1:
        candidate = candidate.strip("$").strip()
    return candidate


def _old_extract(text: str) -> str | None:
    if not text:
        return None
    thought = "</think>" in text
    if thought:
        text = text.rpartition("</think>")[2].strip()
    boxed = last_boxed(text)
    if boxed:
        return boxed
    end = text.rfind("</answer>")
    start = text.rfind("<answer>", 0, end) if end >= 0 else -1
    if start >= 0:
        inner = text[start + len("<answer>") : end].strip()
        if inner:
            return last_boxed(inner) or _old_strip(inner)
    if thought and text and len(text) <= 40 and "answer is" not in text.lower():
        return _old_strip(text)
    said = _THE_ANSWER_IS.findall(text)
    if said and _old_strip(said[-1]):
        return _old_strip(said[-1])
    numbers = _NUMBER.findall(text)
    return numbers[-1].replace(",", "") if numbers else None


def _old_parse_any(text: str) -> list:
    return parse(f"${text}$", parsing_timeout=None) or parse(text, parsing_timeout=None, extraction_mode="first_match")


def old_verify(completion: str, answer: str, settings: MathSettings) -> float:
    predicted = _old_extract(completion)
    if predicted is None:
        return 0.0
    gold = _old_parse_any(answer)
    if not gold:
        return 0.0
    kw = {"float_rounding": settings.precision, "strict": settings.strict,
          "allow_set_relation_comp": settings.allow_set_relation_comp, "timeout_seconds": None}  # fmt: skip
    if verify(gold, _old_parse_any(predicted), **kw):
        return 1.0
    fallback = parse(predicted, parsing_timeout=None, extraction_mode="first_match")
    return 1.0 if fallback and verify(gold, fallback, **kw) else 0.0


def new_verify(completion: str, answer: str, settings: MathSettings) -> float:
    return verify_math(completion, answer, settings)[0]


# --- workloads -------------------------------------------------------------------------------------------------
def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def short_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    sys.path.insert(0, str(ROOT / "tests" / "bench"))
    from bench_rewards import make_completions

    return make_completions(n, seed)


def long_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """~1,700-character reasoning with inline LaTeX and numbers, a boxed answer at the end, no `</think>`."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        steps = " ".join(f"Step {k}: we have $x_{k} = {rng.randint(1, 99)}$ so {rng.randint(1, 9)}*{rng.randint(1, 9)}"
                         f" = {rng.randint(1, 81)}." for k in range(40))  # fmt: skip
        out.append((f"{steps} Therefore the answer is \\boxed{{{i}}}.", str(i)))
    return out


def cpu_ms(fn, pairs: list[tuple[str, str]]) -> float:
    settings = MathSettings()
    fn(*pairs[0], settings)  # imports and caches outside the timing
    start = time.process_time()
    for completion, answer in pairs:
        fn(completion, answer, settings)
    return (time.process_time() - start) * 1000 / len(pairs)


def main() -> None:
    cases = _read(DATA / "math_verify" / "cases.jsonl")
    adversarial = _read(DATA / "math_adversarial.jsonl")
    wrong = [r for r in adversarial if r["expected"] == 0]
    short, long = short_pairs(2000), long_pairs(300)
    print("| math correctness (one process, no timeout) | before | after |")
    print("|---|---:|---:|")
    rows = {}
    for name, fn in (("before", old_verify), ("after", new_verify)):
        agree = sum(fn(c["pred"], c["gold"], MathSettings(c["precision"], c["strict"], c["allow_set_relation_comp"]))
                    == c["expected"] for c in cases)  # fmt: skip
        paid = sum(fn(r["completion"], r["answer"], MathSettings()) == 1.0 for r in wrong)
        rows[name] = (agree, paid, cpu_ms(fn, short), cpu_ms(fn, long))
    b, a = rows["before"], rows["after"]
    print(f"| agreement with Math-Verify's suite ({len(cases)} cases) | {b[0]} ({b[0] / len(cases):.1%}) "
          f"| {a[0]} ({a[0] / len(cases):.1%}) |")
    print(f"| wrong answers scored correct (adversarial set, {len(wrong)}) | {b[1]} | {a[1]} |")
    print(f"| CPU ms/item, short completions ({len(short)}) | {b[2]:.2f} | {a[2]:.2f} ({b[2] / a[2]:.2f}x) |")
    print(f"| CPU ms/item, ~1.7k-char reasoning ({len(long)}) | {b[3]:.2f} | {a[3]:.2f} ({b[3] / a[3]:.2f}x) |")


if __name__ == "__main__":
    main()
