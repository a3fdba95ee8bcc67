"""Math equivalence of an extracted answer and a ground truth, with math-verify; also the worker loop.

`verify_math` has no timeout of its own: math-verify's timeout uses SIGALRM, which only works on the main
thread and cannot interrupt sympy stuck inside C code (`9^{9^{9^9}}` builds a huge integer). So it runs
in worker processes (`python -m rlr.rewards.math_check`) that the parent kills when an item overruns
(`rlr.rewards.math_pool`). The worker speaks JSON lines on stdin/stdout: `[id, completion, answer]` in,
`[id, score, status]` out, where status is "ok", "no_answer" or "error".

Workers are not sandboxed like `rlr.sandbox`: math-verify reads model text with regexes (plain expressions
are limited to digits and operators before sympy sees them) and an ANTLR LaTeX grammar, and never runs it.
The hazard is CPU and memory, bounded by the parent's timeout and the worker's RLIMIT_AS.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from rlr.rewards.extract import extract_answer

_parse: Any = None
_verify: Any = None


def _load() -> None:
    global _parse, _verify
    if _parse is None:
        from math_verify import parse, verify

        # math-verify warns once that its (signal) timeout is off: intended, the parent enforces one.
        logging.getLogger("math_verify").setLevel(logging.ERROR)
        _parse, _verify = parse, verify


def _parse_any(text: str) -> list:
    """Parse as LaTeX first (`$...$` makes math-verify read bare `\\frac{1}{2}`), else with its own extraction."""
    parsed = _parse(f"${text}$", parsing_timeout=None)
    return parsed or _parse(text, parsing_timeout=None, extraction_mode="first_match")


def verify_math(completion: str, answer: str) -> tuple[float, str]:
    """Score one completion against a ground truth: (1.0 or 0.0, status). No timeout: see module doc.

    >>> verify_math(r"so \\boxed{\\frac{1}{2}}", "0.5")
    (1.0, 'ok')
    """
    _load()
    predicted = extract_answer(completion)
    if predicted is None:
        return 0.0, "no_answer"
    gold = _parse_any(answer)
    if not gold:
        return 0.0, "error"
    if _verify(gold, _parse_any(predicted), timeout_seconds=None):
        return 1.0, "ok"
    # "$prose$" parses as a product of symbols; math-verify's own extraction reads prose better.
    fallback = _parse(predicted, parsing_timeout=None, extraction_mode="first_match")
    return (1.0 if fallback and _verify(gold, fallback, timeout_seconds=None) else 0.0), "ok"


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
        item_id, completion, answer = json.loads(line)
        try:
            score, status = verify_math(completion, answer)
        except BaseException:  # RecursionError, MemoryError, sympy internals: all score 0)
            score, status = 0.0, "error"
        out.write(json.dumps([item_id, score, status]) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
