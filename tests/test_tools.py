"""rl.tools: the built-in tools as pure functions (hostile input included) and the checks made when a config loads."""

from __future__ import annotations

import pytest

from rlr.tools.calculator import CalculatorError, calculator
from rlr.tools.python import make_python_tool, python


@pytest.mark.parametrize(("expression", "value"), [
    ("1 + 2 * 3", "7"), ("(12 + 3) * 45", "675"), ("7 / 2", "3.5"), ("6 / 3", "2"), ("7 // 2", "3"),
    ("7 % 4", "3"), ("2 ** 10", "1024"), ("-3 + +4", "1"), ("(" * 99 + "2" + ")" * 99, "2"),
    ("1234 * 5678", "7006652"), (" 0.5 * 4 ", "2"),
])
def test_calculator_does_arithmetic(expression, value):
    assert calculator(expression) == value


@pytest.mark.parametrize(("expression", "says"), [
    ("__import__('os').system('true')", "unsupported syntax"),  # no calls, no names: ast, never eval
    ("x + 1", "unsupported syntax"), ("'a' * 3", "unsupported syntax"), ("[1] * 3", "unsupported syntax"),
    ("9 ** 9 ** 9", "too large"), ("10 ** 100000", "too large"),
    ("2 ** 99 * 2 ** 99 * 2 ** 99 * 2 ** 99", "too large"),
    ("1 / 0", "division by zero"), ("5 % 0", "division by zero"), ("1 +", "not an arithmetic expression"),
    ("(" * 150 + "1" + ")" * 150, "longer than"), ("1+" * 200 + "1", "longer than"), ("1e308 * 10", "too large"),
])
def test_calculator_refuses_everything_else(expression, says):
    with pytest.raises(CalculatorError, match=says):  # TRL replies {"error": ...} and counts a tool failure
        calculator(expression)


def test_python_tool_returns_stdout():
    assert python("print(sum(range(10)))").strip() == "45"
    assert "no output" in python("x = 1")


@pytest.mark.parametrize(("code", "says"), [
    ("while True:\n    pass", "timed out"),
    ("import os\nos._exit(3)", "exit code 3"),
    ("raise ValueError('bad input')", "ValueError: bad input"),
    ("print('x' * 10_000_000)", "output limit"),
    ("import sys\nsys.setrecursionlimit(10**6)\ndef f(n): return f(n + 1)\nf(0)", "error"),
    ("x = bytearray(4 * 1024 ** 3)", "MemoryError"),
])
def test_python_tool_turns_hostile_code_into_an_error_reply(code, says):
    from rlr.tools.guard import MAX_REPLY_CHARS

    reply = make_python_tool(timeout_s=2.0)(code)
    assert reply.startswith("error:") and says in reply, reply
    assert len(reply) <= MAX_REPLY_CHARS + 100  # what floods stdout does not flood the context


HOSTILE_TOOLS = '''
import sys
import time


def hang(x: str) -> str:
    """Never returns.

    Args:
        x: Anything.
    """
    time.sleep(3600)


def leave(x: str) -> str:
    """Calls sys.exit.

    Args:
        x: Anything.
    """
    sys.exit(0)


def flood(x: str) -> str:
    """Returns 10 MB.

    Args:
        x: Anything.
    """
    return "y" * 10_000_000
'''


def test_guard_stops_hanging_exiting_and_flooding_user_tools(tmp_path):
    from rlr.tools.guard import MAX_REPLY_CHARS, ToolError
    from rlr.tools.registry import build_tools, check_tool_schema

    (tmp_path / "hostile.py").write_text(HOSTILE_TOOLS)
    hang, leave, flood = build_tools(["hostile.py:hang", "hostile.py:leave", "hostile.py:flood"], tmp_path, 0.5)
    assert check_tool_schema("hang", hang)["function"]["name"] == "hang"  # the guard keeps what TRL reads
    with pytest.raises(TimeoutError, match="0.5 s"):
        hang("x")
    with pytest.raises(ToolError, match="SystemExit"):
        leave("x")
    assert len(flood("x")) < MAX_REPLY_CHARS + 100


TOOL_FILE = '''
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first.
        b: The second.
    """
    return a + b


def untyped(a, b):
    """Add.

    Args:
        a: The first.
        b: The second.
    """
    return a + b


def undocumented(a: int) -> int:
    return a
'''


def _tools_preset(make_preset, tmp_path, tools):
    (tmp_path / "my_tools.py").write_text(TOOL_FILE)
    return make_preset(name="tools", rl={"tools": tools})


def test_user_tool_loads_and_its_schema_is_what_trl_builds(make_preset, tmp_path, cli):
    from rlr.tools.registry import build_tools, check_tool_schema

    (tmp_path / "my_tools.py").write_text(TOOL_FILE)
    [add, calc] = build_tools(["my_tools.py:add", "calculator"], tmp_path)
    assert add(2, 3) == "5" and calc("2+3") == "5"  # replies are text, as TRL sends them
    schema = check_tool_schema("my_tools.py:add", add)
    assert schema["function"]["name"] == "add" and set(schema["function"]["parameters"]["properties"]) == {"a", "b"}


@pytest.mark.parametrize(("tool", "says"), [
    ("calculater", "unknown tool 'calculater'; did you mean 'calculator'?"),
    ("my_tools.py:untyped", "tool 'my_tools.py:untyped'"),
    ("my_tools.py:undocumented", "tool 'my_tools.py:undocumented'"),
    ("my_tools.py:missing", "has no function 'missing'"),
    ("nope.py:f", "tool 'nope.py:f': file nope.py not found"),
])
def test_a_bad_tool_exits_2_naming_it(make_preset, tmp_path, cli, tool, says):
    result = cli("validate", _tools_preset(make_preset, tmp_path, ["calculator", tool]))
    assert result.code == 2
    assert "rl.tools[1]" in result.stderr and says in result.stderr
    assert "Traceback" not in result.stderr


def test_tools_need_grpo_and_chat_prompts(make_preset, tmp_path, cli):
    preset = _tools_preset(make_preset, tmp_path, ["calculator"])
    assert cli("validate", preset).code == 0
    result = cli("validate", preset, "rl.algorithm=rloo", "template.chat=false")
    assert result.code == 2
    assert "RLOOTrainer cannot call tools" in result.stderr and "template.chat=true" in result.stderr
