"""rl.environment: the shipped guess_number environment, user environments checked at config load, env: prompts."""

from __future__ import annotations

import json

import pytest

from rlr.envs.guess_number import GuessNumberEnv


def test_guess_number_answers_higher_lower_correct_and_scores_the_episode():
    env = GuessNumberEnv()
    assert env.reset(answer="37", prompt=[], meta="{}") is None  # TRL passes the whole row; the prompt says it all
    assert [env.guess(50), env.guess(25), env.guess("37")] == ["lower", "higher", "correct"]
    assert env.get_reward() == pytest.approx(0.9)
    env.reset(answer="5")
    assert env.get_reward() == 0.0
    for _ in range(8):
        env.guess(1)
    assert env.guess(5).startswith("no guesses left") and env.get_reward() == 0.0


USER_ENV = '''
import time


class Counter:
    """Count up."""

    def reset(self, **row):
        self.n = 0

    def add(self, k: int) -> str:
        """Add k.

        Args:
            k: How much.
        """
        self.n += k
        return str(self.n)

    def stall(self, k: int) -> str:
        """Never returns.

        Args:
            k: Ignored.
        """
        time.sleep(3600)


class NoReset:
    def add(self, k: int) -> str:
        """Add.

        Args:
            k: How much.
        """
        return ""


class Untyped:
    def reset(self, **row):
        pass

    def add(self, k):
        """Add.

        Args:
            k: How much.
        """
        return ""
'''


def test_user_environment_tools_are_guarded_and_keep_their_schema(tmp_path):
    from rlr.envs.registry import check_environment, guarded_factory
    from rlr.tools.registry import check_tool_schema

    (tmp_path / "my_env.py").write_text(USER_ENV)
    cls = guarded_factory(check_environment("my_env.py:Counter", tmp_path), timeout_s=0.5)
    env = cls()
    env.reset()
    assert env.add(2) == "2" and env.add(3) == "5" and type(env).__name__ == "Counter"
    assert check_tool_schema("add", env.add)["function"]["parameters"]["properties"] == {
        "k": {"type": "integer", "description": "How much."}}
    with pytest.raises(TimeoutError):
        env.stall(1)


@pytest.mark.parametrize(("env", "says"), [
    ("guess_numbr", "unknown environment 'guess_numbr'; did you mean 'guess_number'?"),
    ("my_env.py:NoReset", "has no reset(**row) method"),
    ("my_env.py:Untyped", "'my_env.py:Untyped.add'"),
    ("my_env.py:Missing", "has no class 'Missing'"),
])
def test_a_bad_environment_exits_2_naming_it(make_preset, tmp_path, cli, env, says):
    (tmp_path / "my_env.py").write_text(USER_ENV)
    result = cli("validate", make_preset(name="env", rl={"environment": env}))
    assert result.code == 2 and "rl.environment" in result.stderr and says in result.stderr, result.stderr


def test_env_source_writes_the_environments_prompts(make_preset, tmp_path, cli):
    preset = make_preset(name="guess", data={"train": {"source": "env:guess_number", "rows": 12}})
    assert cli("prepare-data", preset).code == 0
    rows = [json.loads(line) for line in (tmp_path / "runs" / "guess" / "data" / "train.jsonl").open()]
    assert len(rows) == 12 and len({r["answer"] for r in rows}) > 3  # one prompt, many secrets: nothing deduped
    assert "guess tool" in rows[0]["prompt"][-1]["content"]
    result = cli("validate", make_preset(name="bad", data={"train": {"source": "env:guess_numbr"}}))
    assert result.code == 2 and "data.train[0].source: unknown environment 'guess_numbr'" in result.stderr


@pytest.mark.parametrize("name", ["agentic/tiny-guess-number", "agentic/qwen2.5-1.5b-python-gsm8k"])
def test_agentic_presets_validate_with_their_tools(cli, name):
    result = cli("validate", name, "--json")
    assert result.code == 0, result.stderr
    rl = json.loads(result.stdout)["config"]["rl"]
    assert rl["tools"] == ["python"] or rl["environment"] == "guess_number"


def test_code_tests_env_returns_failing_tests_and_scores_the_last_submission():
    from rlr.envs.code_tests import CodeTestsEnv

    env = CodeTestsEnv()
    env.reset(tests=["assert double(2) == 4", "assert double(-1) == -2"], meta="{}")
    reply = env.run_tests("def double(x):\n    return x + 2")
    assert reply.startswith("passed 1/2; failing:") and "double(-1)" in reply
    assert env.get_reward() == 0.5
    assert env.run_tests("def double(x):\n    return 2 * x") == "passed 2/2" and env.get_reward() == 1.0
    assert env.run_tests("while True:\n    pass").startswith("passed 0/2")  # a hang costs the time limit, no more
    assert env.get_reward() == 0.0
