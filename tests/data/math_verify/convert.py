"""Turn Math-Verify's own test suite into `cases.jsonl` (run once; the output is committed).

    python tests/data/math_verify/convert.py /path/to/Math-Verify [COMMIT]

Reads `tests/*.py` of a Math-Verify git checkout (or bare git dir) at COMMIT (default HEAD) and writes every
parametrized (gold, pred, expected) case with the settings its test passes to math-verify: `precision`,
`strict`, `allow_set_relation_comp`, the extraction targets (`match_types`). Cases are read from the source
with `ast`, never imported, so the converter needs neither pytest nor math-verify. Tests that exercise
parse() alone (string extraction, configs, timeouts) have no gold/pred pair and are left out.
"""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from pathlib import Path

_FILES = ["test_all.py", "test_boxed.py", "test_numina_cases.py", "test_open_thoughts.py", "test_strict.py",
          "test_yujianll.py"]  # fmt: skip
_DEFAULTS = {"precision": 6, "strict": True, "allow_set_relation_comp": False, "match_types": ["latex", "expr"]}


def _show(repo: str, commit: str, path: str) -> str:
    git_dir = ["--git-dir", repo] if not (Path(repo) / ".git").exists() else ["-C", repo]
    return subprocess.run(["git", *git_dir, "show", f"{commit}:{path}"], check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


def _value(node: ast.AST) -> object:
    try:
        return ast.literal_eval(node)
    except ValueError:  # one f-string over math.sqrt (test_float_precision): evaluate it, with math alone
        return eval(compile(ast.Expression(node), "<case>", "eval"), {"__builtins__": {}, "math": math})  # noqa: S307


def _settings(func: ast.FunctionDef) -> dict[str, object]:
    """The keywords the test passes to `compare_strings` (a name refers to a parametrized argument)."""
    for node in ast.walk(func):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "compare_strings":
            return {k.arg: (k.value.id if isinstance(k.value, ast.Name) else ast.literal_eval(k.value))
                    for k in node.keywords}  # fmt: skip
    # test_yujianll: verify(parse(gold), parse(pred)) with math-verify's defaults
    return {}


def cases_of(source: str, file: str) -> list[dict[str, object]]:
    out = []
    for func in ast.parse(source).body:
        if not isinstance(func, ast.FunctionDef):
            continue
        for deco in func.decorator_list:
            if not (isinstance(deco, ast.Call) and getattr(deco.func, "attr", None) == "parametrize"):
                continue
            names = [n.strip() for n in ast.literal_eval(deco.args[0]).split(",")]
            if "gold" not in names or "pred" not in names:
                continue
            settings = _settings(func)
            for row in deco.args[1].elts:
                values = dict(zip(names, (_value(e) for e in row.elts), strict=True))
                expected = values.get("expected", values.get("result"))
                case = {"source": f"tests/{file}::{func.name}", "gold": values["gold"], "pred": values["pred"],
                        "expected": int(expected)}  # fmt: skip
                for key, default in _DEFAULTS.items():
                    given = settings.get(key, default)
                    case[key] = values[given] if isinstance(given, str) and given in values else given
                out.append(case)
    return out


def main() -> None:
    repo, commit = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "HEAD"
    sha = subprocess.run(["git", "--git-dir", repo, "rev-parse", commit], capture_output=True, text=True).stdout
    cases = [c for f in _FILES for c in cases_of(_show(repo, commit, f"tests/{f}"), f)]
    out = Path(__file__).with_name("cases.jsonl")
    out.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases))
    print(f"{len(cases)} cases from huggingface/Math-Verify@{sha.strip()[:12] or commit} -> {out}")


if __name__ == "__main__":
    main()
