"""`rlr evaluate` scores with the preset's rewards (their math-verify settings), so a bad reward spec is bad input:
exit 2 naming `rewards[i]...` before any model is loaded or anything is written (it was exit 1 with a bare
ValueError, after generating, leaving a failed eval/<label>/ behind)."""

from __future__ import annotations


def test_a_bad_reward_arg_exits_2_before_evaluate_writes_anything(cli, make_preset, micro_model, tmp_path):
    preset = make_preset(micro_model, rewards=[{"name": "math_accuracy", "args": {"precision": "abc"}}])
    r = cli("evaluate", preset, "--limit", "1")
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert r.code == 2 and len(errors) == 1, r.stderr
    assert "rewards[0].args" in errors[0] and "precision" in errors[0] and "Traceback" not in r.stderr
    assert not (tmp_path / "runs/t/eval").exists()


def test_evaluate_needs_no_reward(cli, make_preset, micro_model, tmp_path):
    """train-rl refuses a preset without rewards; evaluate scores with the task's verifier and takes it."""
    r = cli("evaluate", make_preset(micro_model, rewards=[]), "--dry-run")
    assert r.code == 0, r.stderr


def test_a_bad_reward_arg_is_reported_once_by_validate(cli, make_preset):
    preset = make_preset("some/model", rewards=[{"name": "math_accuracy", "args": {"precision": "abc"}}])
    r = cli("validate", preset)
    assert r.code == 2 and r.stderr.count("precision must be") == 1, r.stderr
