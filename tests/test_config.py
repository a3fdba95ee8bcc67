"""The config system: extends, overrides and their coercion, strict keys, collected errors, TRL pass-through."""

from __future__ import annotations

import pytest

from rlr.checks import load_experiment
from rlr.config.load import load_config
from rlr.errors import ConfigError, UserError
from tests.conftest import write_preset


def test_overrides_are_coerced_by_the_declared_type(make_preset):
    p = make_preset()
    loaded = load_config(p, ["run.seed=7", "eval.temperature=1e-5", "eval.greedy=true", "eval.k=[1,2]",
                             "eval.samples=4", "lora.target_modules=[q_proj,v_proj]", "data.max_prompt_tokens=null"])
    cfg = loaded.cfg
    assert cfg.run.seed == 7
    assert cfg.eval.temperature == pytest.approx(1e-5) and isinstance(cfg.eval.temperature, float)
    assert cfg.eval.greedy is True
    assert cfg.eval.k == [1, 2]
    assert cfg.lora.target_modules == ["q_proj", "v_proj"]
    assert cfg.data.max_prompt_tokens is None
    assert loaded.origins["run.seed"] == "command line"


def test_yaml_1e_minus_6_string_becomes_a_float(tmp_path):
    # PyYAML reads 1e-6 (no dot) as a string; the field type decides
    p = tmp_path / "x.yaml"
    p.write_text("run: {name: a}\nmodel: {name_or_path: m}\neval: {temperature: 1e-6}\n")
    assert load_config(p).cfg.eval.temperature == pytest.approx(1e-6)


def test_exponent_floats_are_floats_in_the_resolved_config_too(tmp_path):
    # rl.trainer is TRL's, typed only when the TRL config is built; the resolved config (config.yaml) must agree
    p = write_preset(tmp_path / "x.yaml", {"run": {"name": "a"}, "model": {"name_or_path": "m"}})
    p.write_text(p.read_text() + "rl: {trainer: {learning_rate: 3e-6}}\n")
    loaded = load_config(p, ["sft.trainer.learning_rate=2e-5", "eval.samples=1e1", "eval.k=[1, 1e1]"])
    assert loaded.cfg.rl.trainer["learning_rate"] == 3e-6 and loaded.cfg.sft.trainer["learning_rate"] == 2e-5
    assert loaded.cfg.eval.k == [1, 10]
    assert load_config(p, ["run.name=v1e5"]).cfg.run.name == "v1e5"  # only whole numbers with an exponent


def test_trainer_values_are_coerced_by_trl_field_types(make_preset):
    loaded = load_experiment(make_preset(), ["rl.trainer.learning_rate=2e-6", "rl.trainer.num_generations=4",
                                         "rl.trainer.max_steps=1e2"], stages=("rl",))
    assert loaded.cfg.rl.trainer["max_steps"] == 100.0  # as written in the config ...
    from rlr.checks import validate_experiment

    report = validate_experiment(loaded, ("rl",))
    assert report["trl"]["rl"]["learning_rate"] == pytest.approx(2e-6)
    assert report["trl"]["rl"]["max_steps"] == 100 and isinstance(report["trl"]["rl"]["max_steps"], int)  # ... TRL's
    assert report["trl"]["rl"]["num_generations"] == 4
    assert report["device"]["use_cpu"] is True and report["trl"]["rl"]["bf16"] is False


def test_extends_order_later_wins(tmp_path):
    write_preset(tmp_path / "base.yaml", {"run": {"name": "base", "seed": 1}, "model": {"name_or_path": "m"},
                                          "eval": {"samples": 4, "k": [1, 4]}})
    write_preset(tmp_path / "mid.yaml", {"extends": "base.yaml", "run": {"seed": 2}, "eval": {"temperature": 0.1}})
    top = write_preset(tmp_path / "top.yaml", {"extends": ["mid.yaml"], "run": {"name": "top"}})
    cfg = load_config(top, ["eval.temperature=0.3"]).cfg
    assert (cfg.run.name, cfg.run.seed, cfg.eval.samples, cfg.eval.temperature) == ("top", 2, 4, 0.3)


def test_extends_a_shipped_preset_by_name(tmp_path):
    p = write_preset(tmp_path / "x.yaml", {"extends": "algorithms/dapo", "run": {"name": "x"},
                                           "model": {"name_or_path": "m"}})
    cfg = load_config(p).cfg
    assert cfg.rl.algorithm == "dapo" and cfg.rl.trainer["epsilon_high"] == 0.28
    assert cfg.rl.dynamic_sampling.enabled is True


def test_algorithm_bundle_sits_under_user_trainer_fields(make_preset):
    loaded = load_config(make_preset(rl={"algorithm": "dapo", "trainer": {"epsilon_high": 0.3}}))
    assert loaded.cfg.rl.trainer["epsilon_high"] == 0.3  # the user wins
    assert loaded.cfg.rl.trainer["loss_type"] == "dapo"  # the bundle fills the rest
    assert loaded.origins["rl.trainer.loss_type"] == "presets/algorithms/dapo.yaml"


def test_switching_algorithm_drops_the_extended_bundle(make_preset):
    """A preset that extends algorithms/dapo and is run with rl.algorithm=grpo trains GRPO, not DAPO in disguise."""
    p = make_preset(extends=["algorithms/dapo"], rl={"trainer": {"learning_rate": 1e-5}})
    dapo = load_config(p).cfg.rl
    assert dapo.trainer["loss_type"] == "dapo" and dapo.dynamic_sampling.enabled
    grpo = load_config(p, ["rl.algorithm=grpo"]).cfg.rl
    assert grpo.trainer["loss_type"] == "grpo" and grpo.trainer["beta"] == 0.04 and "epsilon_high" not in grpo.trainer
    assert not grpo.dynamic_sampling.enabled and grpo.overlong_buffer is None
    assert grpo.trainer["learning_rate"] == 1e-5  # the user's own keys stay
    rloo = load_config(p, ["rl.algorithm=rloo"]).cfg.rl
    assert rloo.trainer_type == "rloo" and "loss_type" not in rloo.trainer


def test_extends_cycle_is_an_error(tmp_path):
    write_preset(tmp_path / "a.yaml", {"extends": "b.yaml"})
    write_preset(tmp_path / "b.yaml", {"extends": "a.yaml"})
    with pytest.raises(UserError, match="extends cycle"):
        load_config(tmp_path / "a.yaml")


def test_unknown_keys_name_the_dotted_key_the_file_and_a_suggestion(make_preset):
    p = make_preset(eval={"temprature": 0.5}, lora={"rank": 8})
    with pytest.raises(ConfigError) as e:
        load_config(p, ["run.sed=1"])
    msgs = e.value.problems
    assert len(msgs) == 3  # all collected, reported together
    assert any(m.startswith("eval.temprature: unknown key; did you mean 'temperature'?") and str(p.name) in m
               for m in msgs)
    assert any(m.startswith("run.sed: unknown key; did you mean 'seed'? (in command line)") for m in msgs)
    assert any(m.startswith("lora.rank: unknown key") for m in msgs)


def test_problems_in_list_items_name_the_override_as_their_origin():
    from rlr.config.coerce import Problems

    problems = Problems({"data": "p.yaml", "data.train.source": "command line", "rewards.1.weight": "command line"})
    assert problems.where("data.train[0].source") == " (in command line)"  # one-source mapping, normalised to a list
    assert problems.where("rewards[1].weight") == " (in command line)"
    assert problems.where("data.train[0].rows") == " (in p.yaml)"


def test_reward_problems_name_the_file_or_override_that_set_them(make_preset):
    p = make_preset(rewards=[{"name": "accuracyy"}, {"name": "overlong", "args": {"soft_punish_cache": 4}}])
    with pytest.raises(ConfigError) as e:
        load_experiment(p, ["rewards.1.args.max_lenn=9"], stages=("rl",))
    first, second = e.value.problems
    assert first.startswith("rewards[0].name: unknown reward 'accuracyy'") and first.endswith(f"(in {p})")
    assert second.startswith("rewards[1].args.max_lenn: reward 'overlong': unknown arg 'max_lenn'")
    assert second.endswith("(in command line)")


def test_a_problem_with_a_whole_item_names_the_override_inside_it(make_preset):
    p = make_preset(rewards=[{"name": "overlong", "args": {"max_completion_len": 10, "soft_punish_cache": 4}}])
    with pytest.raises(ConfigError) as e:
        load_experiment(p, ["rewards.0.args.soft_punish_cache=100"], stages=("rl",))
    (problem,) = e.value.problems
    assert problem.startswith("rewards[0].args: reward 'overlong': bad args")
    assert problem.endswith(f"(in {p}; rewards.0.args.soft_punish_cache from command line)")


def test_task_knob_problems_name_the_knob_and_its_origin(make_preset):
    p = make_preset(data={"train": {"source": "task:arithmetic", "rows": 8, "args": {"digits": 2}}})
    with pytest.raises(ConfigError) as e:
        load_experiment(p, ["data.train.args.foo=1"], stages=("data",))
    assert e.value.problems[0].startswith("data.train[0].args.foo: arithmetic: unknown knob 'foo'")
    assert e.value.problems[0].endswith("(in command line)")
    with pytest.raises(ConfigError) as e:
        load_experiment(p, ["data.train.args.digits=abc"], stages=("data",))
    assert e.value.problems[0].startswith("data.train[0].args.digits: arithmetic: knob 'digits' must be int")
    with pytest.raises(ConfigError) as e:
        load_experiment(p, ["data.train.source=task:arithmetik"], stages=("data",))
    assert e.value.problems[0].startswith("data.train[0].source: unknown task 'arithmetik'")


def test_wrong_types_and_choices(make_preset):
    with pytest.raises(ConfigError) as e:
        load_config(make_preset(), ["eval.samples=many", "model.dtype=bf16", "eval.greedy=maybe"])
    text = str(e.value)
    assert "eval.samples: expected an integer, got 'many'" in text
    assert "model.dtype: must be one of auto, bfloat16, float16, float32; got 'bf16'; did you mean 'bfloat16'?" in text
    assert "eval.greedy: expected true or false" in text


def test_trainer_sections_are_checked_against_trl(make_preset):
    p = make_preset(sft={"trainer": {"learning_rte": 1e-4, "output_dir": "x"}},
                    rl={"trainer": {"seed": 3, "reward_weights": [1.0], "num_generations": "four"}})
    with pytest.raises(ConfigError) as e:
        load_experiment(p, stages=("sft", "rl"))
    text = str(e.value)
    assert "sft.trainer.learning_rte: not a field of trl.SFTConfig; did you mean 'learning_rate'?" in text
    assert "sft.trainer.output_dir: rlr owns this key: rlr writes to <run.output_dir>/<run.name>/<stage>" in text
    assert "rl.trainer.seed: rlr owns this key: set run.seed" in text
    assert "rl.trainer.reward_weights: rlr owns this key: set weight: on each entry of rewards" in text
    assert "rl.trainer.num_generations: expected int | None, got 'four'" in text


def test_trl_cross_field_checks_name_the_section(make_preset):
    from rlr.checks import validate_experiment

    loaded = load_experiment(make_preset(rl={"trainer": {"num_generations": 3, "per_device_train_batch_size": 8}}),
                         stages=("rl",))
    with pytest.raises(ConfigError, match="rl.trainer: trl.GRPOConfig rejected the settings: .*divisible"):
        validate_experiment(loaded, ("rl",))


def test_rloo_bundle_checks_against_rloo_config(make_preset):
    with pytest.raises(ConfigError, match="not a field of trl.RLOOConfig"):
        load_experiment(make_preset(rl={"algorithm": "rloo", "trainer": {"loss_type": "dapo"}}), stages=("rl",))


def test_unknown_algorithm(make_preset):
    with pytest.raises(UserError, match="unknown algorithm 'grp0'; did you mean 'grpo'"):
        load_config(make_preset(rl={"algorithm": "grp0"}))


def test_missing_required_and_bad_yaml(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("run: {seed: 1}\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "run.name: required" in str(e.value) and "model.name_or_path: required" in str(e.value)
    p.write_text("run: {name: [oops\n")
    with pytest.raises(UserError, match=r"invalid YAML in .*x.yaml line \d+"):
        load_config(p)
    with pytest.raises(UserError, match="preset not found: .*nothere.yaml; see `rlr presets list`"):
        load_config(tmp_path / "nothere.yaml")


def test_bad_override_syntax(make_preset):
    with pytest.raises(UserError, match="is not key=value"):
        load_config(make_preset(), ["run.seed"])


def test_list_index_override(make_preset):
    cfg = load_config(make_preset(rewards=[{"name": "accuracy"}, {"name": "think_format"}]),
                      ["rewards.1.weight=0.25"]).cfg
    assert cfg.rewards[1].weight == 0.25


def test_missing_data_file_is_reported(make_preset):
    p = make_preset(data={"train": {"source": "no/such/file.jsonl"}})
    with pytest.raises(ConfigError, match=r"data.train\[0\].source: no such file 'no/such/file.jsonl'"):
        load_experiment(p, stages=("data",))


@pytest.mark.parametrize("stage", ["sft", "rl"])
def test_a_users_gradient_checkpointing_is_not_overridden_by_the_cpu_default(make_preset, stage):
    """transformers 5 reads `activation_checkpointing` first, and rlr's CPU default sets it to false: the user's
    `gradient_checkpointing: true` (the old, still documented name) must reach the trainer as the new name."""
    from rlr.checks import validate_experiment

    p = make_preset()
    loaded = load_experiment(p, [f"{stage}.trainer.gradient_checkpointing=true"], stages=(stage,))
    trl = validate_experiment(loaded, (stage,))["trl"][stage]
    assert trl["activation_checkpointing"] is True and "gradient_checkpointing" not in trl
    plain = validate_experiment(load_experiment(p, [], stages=(stage,)), (stage,))["trl"][stage]
    assert plain["activation_checkpointing"] is False  # CPU default unchanged when the user says nothing
