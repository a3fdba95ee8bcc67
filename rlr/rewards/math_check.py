"""Math equivalence of an extracted answer and a ground truth, with math-verify; also the worker loop.

`verify_math` has no timeout of its own: math-verify's timeout uses SIGALRM, which only works on the main
thread and cannot interrupt sympy stuck inside C code (`9^{9^{9^9}}` builds a huge integer). So it runs
in worker processes (`python -m rlr.rewards.math_check`) that the parent kills when an item overruns
(`rlr.rewards.math_pool`). The worker speaks JSON lines on stdin/stdout: `[id, completion, answer, settings]` in
(settings: `MathSettings.as_dict()`), `[id, score, status]` out, where status is "ok", "no_answer",
"gold_unparseable" or "error".

Workers are not sandboxed like `rlr.sandbox`: math-verify reads model text with regexes (plain expressions
are limited to digits and operators before sympy sees them) and an ANTLR LaTeX grammar, and never runs it.
The hazard is CPU and memory, bounded by the parent's timeout and the worker's RLIMIT_AS.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from typing import Any

from rlr.rewards.math_extract import MathSettings, math_candidates
from rlr.rewards.math_fastpath import fast_parse

_parse: Any = None
_verify: Any = None
_targets: Any = None


def _load() -> None:
    global _parse, _verify, _targets
    if _parse is None:
        from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

        # math-verify warns once that its (signal) timeout is off: intended, the parent enforces one.
        logging.getLogger("math_verify").setLevel(logging.ERROR)
        # boxed_match_priority=0: a \boxed{} answer wins over "answer: ..." prose (as in math-verify's own tests)
        _targets = (LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig())
        _parse, _verify = parse, verify


def parse_math(text: str, gold: bool = False) -> list:
    """math-verify's reading of `text` (a completion, or a gold answer): [] when it finds nothing."""
    _load()
    for candidate in math_candidates(text, gold):
        # Integers, fractions and `x = 3` skip the ANTLR parser with math-verify's exact result (math_fastpath).
        parsed = fast_parse(candidate) or _parse(candidate, _targets, parsing_timeout=None)
        if parsed:
            return parsed
    return []


@functools.lru_cache(maxsize=4096)
def _parse_gold(answer: str) -> list:
    """A gold answer is read once per worker: a GRPO group scores its G completions against the same one."""
    return parse_math(answer, gold=True)


def verify_math(completion: str, answer: str, settings: MathSettings | None = None) -> tuple[float, str]:
    """Score one completion against a ground truth: (1.0 or 0.0, status). No timeout: see module doc.

    Both sides go through the same extraction (`parse_math`), as in math-verify. Status is "ok", "no_answer"
    (nothing read from the completion) or "gold_unparseable" (nothing read from the ground truth: the row
    cannot be scored, and the rewards return None for it).

    >>> verify_math(r"so \\boxed{\\frac{1}{2}}", "0.5")
    (1.0, 'ok')
    """
    settings = settings or MathSettings()
    gold = _parse_gold(answer)
    if not gold:
        return 0.0, "gold_unparseable"
    predicted = parse_math(completion)
    if not predicted:
        return 0.0, "no_answer"
    same = _verify(gold, predicted, float_rounding=settings.precision, strict=settings.strict,
                   allow_set_relation_comp=settings.allow_set_relation_comp, timeout_seconds=None)
    return (1.0 if same else 0.0), "ok"


def _limit_memory(limit_mb: int) -> None:
    import resource

    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit_mb * 2**20, limit_mb * 2**20))
    except (ValueError, OSError):
        pass


def main() -> None:
    """Worker loop. A MemoryError or parser exception scores 0 with status "error" and the worker lives on."""
    _limit_memory(int(sys.argv[1]) if len(sys.argv) > 1 else 4096)
    _load()
    sys.setrecursionlimit(10_000)  # deeply nested LaTeX: fail inside the parser, not by crashing the worker
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        item_id, completion, answer, settings = json.loads(line)
        try:
            score, status = verify_math(completion, answer, MathSettings.of(settings))
        except BaseException:  # RecursionError, MemoryError, sympy internals: all score 0)
            score, status = 0.0, "error"
        out.write(json.dumps([item_id, score, status]) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
