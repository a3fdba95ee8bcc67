"""rl.alarms provoked for real: `rlr train-rl` on the micro model, each run driven into the failure the alarm
watches for (a constant reward, a 4-token cap, a huge learning rate, a reward that rises while accuracy cannot).
`stop` must exit 1 with one message and leave a resumable checkpoint; `warn` must carry on and mark the steps."""

from __future__ import annotations

import json
from pathlib import Path

from rl_helpers import prepare, rl_preset

REWARDS = '''
import itertools

_calls = itertools.count(1)


def zero(completions, **kwargs):
    """The same reward for every completion: no group has any variance."""
    return [0.0 for _ in completions]


def parity(completions, **kwargs):
    return [float(len(c[0]["content"] if isinstance(c, list) else c) % 2 == 0) for c in completions]


def rising_format(completions, **kwargs):
    """A 'format' reward that the run drives up call after call (0.25 per batch), with some variance per row."""
    level = 0.25 * next(_calls)
    return [level + 0.1 * p for p in parity(completions)]
'''

# every alarm off but the one under test, so a test proves what it names
OFF = {name: {"enabled": False} for name in
       ("no_signal", "clipped", "entropy_collapse", "kl_blowup", "reward_hacking", "nan")}


def _preset(tmp_path: Path, model: Path, name: str, alarm: str, spec: dict, trainer: dict | None = None,
            rewards: list | None = None, **rl) -> Path:
    (tmp_path / "alarm_rewards.py").write_text(REWARDS)
    alarms = {**OFF, alarm: {"enabled": True, "mode": "stop", **spec}}
    return rl_preset(tmp_path, model, name, "grpo", trainer={"max_steps": 4, "save_steps": 1, **(trainer or {})},
                     rewards=rewards or [{"name": "alarm_rewards.py:parity"}], alarms=alarms, **rl)


def _metrics(tmp_path: Path, name: str) -> list[dict]:
    path = tmp_path / f"runs/{name}/rl/metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _assert_stopped(result, tmp_path: Path, name: str, alarm: str, *words: str, saved: bool = True) -> str:
    assert result.code == 1, result.stderr
    line = [x for x in result.stderr.splitlines() if x.startswith("stopped: ")]
    assert len(line) == 1, result.stderr
    message = line[0]
    assert f"alarm {alarm} at step" in message and f"rl.alarms.{alarm}.mode=warn" in message, message
    for word in words:
        assert word in message, message
    rl = tmp_path / f"runs/{name}/rl"
    step = int(message.split(" at step ")[1].split(":")[0])
    if saved:
        assert (rl / f"checkpoint-{step}/trainer_state.json").is_file()
        assert f"saved in {rl / f'checkpoint-{step}'}" in message
    assert json.loads((rl / "manifest.json").read_text())["status"] == "failed"
    assert any(m.get("alarm") == alarm for m in _metrics(tmp_path, name))
    return message


def test_no_signal_stops_with_a_checkpoint(cli, tmp_path, micro_model):
    preset = _preset(tmp_path, micro_model, "nosig", "no_signal", {"patience": 2},
                     rewards=[{"name": "alarm_rewards.py:zero"}])
    prepare(cli, preset)
    result = cli("train-rl", preset)
    message = _assert_stopped(result, tmp_path, "nosig", "no_signal", "frac_reward_zero_std >= 0.95",
                              "step 1: 1.0, step 2: 1.0", "last good checkpoint (before step 1): none",
                              "rlr rewards check")
    assert "at step 2" in message
    resumed = cli("train-rl", preset, "--resume", "rl.alarms.no_signal.mode=warn")
    assert resumed.code == 0, resumed.stderr  # the checkpoint the alarm left is resumable


def test_no_signal_warn_mode_carries_on_and_marks_the_steps(cli, tmp_path, micro_model):
    preset = _preset(tmp_path, micro_model, "nosigwarn", "no_signal", {"patience": 2, "mode": "warn"},
                     rewards=[{"name": "alarm_rewards.py:zero"}], trainer={"max_steps": 3})
    prepare(cli, preset)
    result = cli("train-rl", preset)
    assert result.code == 0, result.stderr
    assert result.stderr.count("alarm no_signal (warn) at step 2") == 1, result.stderr  # once per streak
    marked = [m["step"] for m in _metrics(tmp_path, "nosigwarn") if m.get("alarm") == "no_signal"]
    assert marked == [2, 3]
    from rlr.report.stage import _run_section, load_run  # the markdown of `rlr report`, without drawing the plots

    section = "\n".join(_run_section(load_run(tmp_path / "runs/nosigwarn")))
    assert "rl alarms fired (2 steps): step 2 no_signal, step 3 no_signal" in section


def test_clipped_completions_stop(cli, tmp_path, micro_model):
    preset = _preset(tmp_path, micro_model, "clip", "clipped", {"patience": 2},
                     trainer={"max_completion_length": 4})
    prepare(cli, preset)
    result = cli("train-rl", preset)
    _assert_stopped(result, tmp_path, "clip", "clipped", "completions/clipped_ratio >= 0.8",
                    "max_completion_length")


def test_reward_hacking_stops_when_format_rises_and_accuracy_is_flat(cli, tmp_path, micro_model):
    # accuracy on 2-digit addition is out of reach of the random micro model (flat at 0); the format reward rises
    preset = _preset(tmp_path, micro_model, "hack", "reward_hacking", {"patience": 2, "threshold": 0.3},
                     rewards=[{"name": "accuracy"}, {"name": "alarm_rewards.py:rising_format"}],
                     trainer={"max_steps": 6})
    prepare(cli, preset)
    result = cli("train-rl", preset)
    _assert_stopped(result, tmp_path, "hack", "reward_hacking", "alarm_rewards.py:rising_format rose +0.4",
                    "rewards/accuracy/mean rose +0", "at step 4", "lower their weight")


def test_entropy_collapse_stops_a_run_with_a_huge_learning_rate(cli, tmp_path, micro_model):
    preset = _preset(tmp_path, micro_model, "ent", "entropy_collapse", {"patience": 2, "threshold": 0.05},
                     trainer={"learning_rate": 5.0, "max_steps": 6}, use_lora=False)
    prepare(cli, preset)
    result = cli("train-rl", preset)
    _assert_stopped(result, tmp_path, "ent", "entropy_collapse", "entropy < 0.05", "learning_rate")


def test_kl_blowup_stops_when_beta_is_set(cli, tmp_path, micro_model):
    preset = _preset(tmp_path, micro_model, "kl", "kl_blowup", {"patience": 1, "threshold": 0.5},
                     trainer={"learning_rate": 5.0, "beta": 0.1, "max_steps": 6}, use_lora=False)
    prepare(cli, preset)
    result = cli("train-rl", preset)
    _assert_stopped(result, tmp_path, "kl", "kl_blowup", "kl > 0.5", "rl.trainer.beta")


def test_nan_stops_without_checkpointing_the_poisoned_model(cli, tmp_path, micro_model):
    preset = _preset(tmp_path, micro_model, "nan", "nan", {}, trainer={"learning_rate": 1.0e38, "max_steps": 6},
                     use_lora=False)
    prepare(cli, preset)
    result = cli("train-rl", preset)
    message = _assert_stopped(result, tmp_path, "nan", "nan", "NaN/inf", "no checkpoint of the NaN model",
                              saved=False)
    step = int(message.split(" at step ")[1].split(":")[0])
    assert not (tmp_path / f"runs/nan/rl/checkpoint-{step}").exists()


def test_no_alarm_fires_on_the_quickstart_grpo_run():
    """The default rl.alarms replayed over the logged metrics of a real 300-step quickstart GRPO run (seed 4, the
    weakest of the six measured: tests/data/quickstart_rl_metrics.jsonl, recorded from rl/metrics.jsonl)."""
    from types import SimpleNamespace

    from rlr.config.schema import AlarmsSection
    from rlr.rewards.registry import build_reward
    from rlr.train.alarms import RunAlarms

    data = Path(__file__).parent / "data/quickstart_rl_metrics.jsonl"
    alarms = RunAlarms(AlarmsSection(), [build_reward("accuracy", {})], 0.0, Path("unused"), "quickstart")
    control = SimpleNamespace(should_training_stop=False, should_save=False)
    for line in data.read_text().splitlines():
        record = json.loads(line)
        state = SimpleNamespace(global_step=record["step"], is_world_process_zero=True)
        alarms.on_log(None, state, control, logs=record)
    assert record["step"] == 300 and alarms.fired == [] and not control.should_training_stop


def test_reward_hacking_watches_the_rewards_whose_trait_says_so():
    """The overlong reward declares `watched_for_hacking = False` (listed twice it is `overlong_2`, still unwatched);
    a user's function can opt out the same way; the correctness reward is the yardstick."""
    from rlr.config.schema import AlarmsSection
    from rlr.rewards.guard import GuardedReward
    from rlr.rewards.registry import build_reward_functions
    from rlr.train.alarms import RunAlarms

    def steady(completions, **kwargs):
        return [0.0] * len(completions)

    steady.watched_for_hacking = False
    funcs, _ = build_reward_functions([{"name": n} for n in ("accuracy", "think_format", "overlong", "overlong")])
    funcs = [GuardedReward(f) for f in [*funcs, steady]]
    alarms = RunAlarms(AlarmsSection(), funcs, 0.0, Path("unused"), "p")
    assert alarms.correct_key == "rewards/accuracy/mean"
    assert set(alarms.other_keys.values()) == {"think_format"}
