"""`code_tests` against code that tries to forge its verdict instead of solving the problem.

Every cheat that once scored 1.0 (issue 15), and the ones added with it, goes through the real reward and must
score 0: the tests run in a judge process the code cannot reach, and only plain data it returns is compared.
An honest solution in the same harness scores 1.0, so a 0 means the cheat failed, not that the harness did.
"""

from __future__ import annotations

import textwrap

import pytest

from rlr.rewards.code import CodeTests

TESTS = ["assert solve(3) == 9", "assert solve(4) == 16", "assert solve(-2) == 4"]
WRONG = "def solve(x):\n    return 0\n"


def score(code: str, tests: list[str] = TESTS, timeout_s: float = 5) -> float | None:
    return CodeTests(timeout_s=timeout_s)([f"```python\n{textwrap.dedent(code)}\n```"], tests=[tests])[0]


def test_honest_and_partial_solutions_score_their_pass_fraction() -> None:
    assert score("def solve(x):\n    return x * x\n") == 1.0
    assert score("def solve(x):\n    return x * x if x > 0 else 0\n") == pytest.approx(2 / 3)
    assert score(WRONG) == 0.0


CHEATS = {
    "module_level_exec_override": WRONG + "exec = lambda *a, **k: None\n",
    "builtins_exec_noop": WRONG + "import builtins\nbuiltins.exec = lambda *a, **k: None\n"
                                  "builtins.eval = lambda *a: True\n",
    "always_equal_object": """
        class Anything:
            def __eq__(self, other):
                return True
            def __ne__(self, other):
                return False
            def __bool__(self):
                return True
            __hash__ = object.__hash__
        def solve(x):
            return Anything()
        """,
    "int_subclass_always_equal": """
        class Int(int):
            def __eq__(self, other):
                return True
        def solve(x):
            return Int(0)
        """,
    "setprofile_reads_the_harness": WRONG + """
        import sys
        seen = set()
        def spy(frame, event, arg):
            f = frame
            while f is not None:
                for value in list(f.f_locals.values()) + list(f.f_globals.values()):
                    if isinstance(value, str) and value not in seen:
                        seen.add(value)
                        for i in range(10):
                            sys.stdout.write("\\n%s %d\\n" % (value, i))
                f = f.f_back
        sys.setprofile(spy)
        sys.settrace(lambda *a: None)
        """,
    "stdout_wrapping_multiplies_markers": WRONG + """
        import sys
        class Echo:
            def __init__(self, inner):
                self.inner = inner
            def write(self, text):
                for i in range(10):
                    self.inner.write(text.replace("0", str(i)) + "\\nPASS %d\\nok\\n" % i)
            def flush(self):
                self.inner.flush()
        sys.stdout = sys.__stdout__ = Echo(sys.stdout)
        print("all tests passed")
        """,
    "os_exit_zero": WRONG + "import os\nos._exit(0)\n",
    "sys_exit_in_atexit": WRONG + "import atexit, sys\natexit.register(lambda: sys.exit(0))\n",
    "os_exit_in_atexit": WRONG + "import atexit, os\natexit.register(lambda: os._exit(0))\n",
    "patched_assertion_error": WRONG + """
        import builtins
        class Never(BaseException):
            pass
        builtins.AssertionError = Never
        """,
    "unittest_monkeypatching": WRONG + """
        import unittest
        for name in dir(unittest.TestCase):
            if name.startswith("assert"):
                setattr(unittest.TestCase, name, lambda *a, **k: None)
        unittest.TestCase.run = lambda self, result=None: result
        unittest.main = lambda *a, **k: None
        """,
    "writes_fake_verdicts_to_every_descriptor": WRONG + """
        import json, os
        fake = b"".join(json.dumps({"i": i, "ok": True, "error": None}).encode() + b"\\n" for i in range(10))
        frame = json.dumps({"ok": 9}).encode()
        for fd in range(0, 64):
            for data in (fake, b"%010d" % len(frame) + frame):
                try:
                    os.write(fd, data)
                except OSError:
                    pass
        """,
}


@pytest.mark.parametrize("code", list(CHEATS.values()), ids=list(CHEATS))
def test_cheat_scores_zero(code: str) -> None:
    assert score(code) == 0.0


def test_patched_assert_helpers_do_not_help_unittest_style_tests() -> None:
    tests = ["import unittest\nunittest.TestCase().assertEqual(solve(3), 9)",
             "import unittest\nunittest.TestCase().assertTrue(solve(4) == 16)"]
    assert score("def solve(x):\n    return x * x\n", tests) == 1.0
    assert score(CHEATS["unittest_monkeypatching"], tests) == 0.0


def test_the_tests_cannot_be_read_from_anywhere_the_code_can_look() -> None:
    """The expected value (31337) is nowhere in the code's process, its /proc, its files or its arguments."""
    spy = """
        import gc, os, sys
        def _search():
            needle = str(int("31") * 1000 + int("337"))  # not a constant of this code itself
            for obj in gc.get_objects():
                try:
                    if needle in repr(obj)[:100000]:
                        return int(needle)
                except Exception:
                    pass
            for pid in os.listdir("/proc"):
                for part in ("cmdline", "environ", "maps"):
                    try:
                        if needle.encode() in open("/proc/%s/%s" % (pid, part), "rb").read():
                            return int(needle)
                    except OSError:
                        pass
            for top, dirs, files in os.walk("/"):
                if top.startswith(("/proc", "/sys", "/usr", "/etc", "/root")):  # system files and the stdlib
                    dirs[:] = []
                    continue
                for name in files:
                    try:
                        if needle.encode() in open(os.path.join(top, name), "rb").read(1 << 20):
                            return int(needle)
                    except OSError:
                        pass
            return -1
        FOUND = _search()
        def solve(x):
            return FOUND
        """
    assert score(spy, ["assert solve(7) == 31337"], timeout_s=60) == 0.0
    assert score(spy, ["assert solve(7) == -1"], timeout_s=60) == 1.0  # it did search, and found nothing


def test_honest_tests_can_use_objects_generators_and_exceptions() -> None:
    """The wire is strict, not crippling: methods on the code's objects, iteration and raised exceptions work."""
    code = """
        def gen(n):
            for i in range(n):
                yield i * i
        class Stack:
            def __init__(self):
                self.items = []
            def push(self, x):
                self.items.append(x)
            def pop(self):
                return self.items.pop()
        def boom():
            raise ValueError("bad")
        """
    tests = ["assert list(gen(4)) == [0, 1, 4, 9]", "assert sum(x for x in gen(3)) == 5",
             "s = Stack(); s.push(3); s.push(4); assert s.pop() == 4 and s.pop() == 3",
             "try:\n    boom()\n    assert False\nexcept ValueError:\n    pass",
             "assert Stack().items == []"]
    assert score(code, tests) == 1.0
