"""Every shipped preset loads and validates (torchtune's test_configs): presets are user API."""

from __future__ import annotations

import pytest

from rlr.config.load import load_config
from rlr.config.validate import validate_experiment
from rlr.presets import list_presets, preset_summary, presets_dir

ALL = list_presets()


@pytest.mark.parametrize("name", ALL)
def test_shipped_preset_validates(name):
    path = presets_dir() / f"{name}.yaml"
    assert preset_summary(path), f"{name}: every preset starts with a comment saying what it is"
    if name.startswith(("algorithms/", "accelerate/", "benchmarks/")):
        return  # fragments: exercised through the experiments that extend them
    loaded = load_config(path, stages=("sft", "rl"))
    report = validate_experiment(loaded)
    assert report["trl"]["rl"]["output_dir"].endswith(f"{loaded.cfg.run.name}/rl")


def test_every_algorithm_has_a_bundle_and_validates(make_preset):
    algorithms = [n.split("/")[1] for n in ALL if n.startswith("algorithms/")]
    assert {"grpo", "dr_grpo", "dapo", "gspo", "bnpo", "cispo", "sapo", "rloo", "reinforce_pp"} <= set(algorithms)
    for name in algorithms:
        loaded = load_config(make_preset(rl={"algorithm": name, "trainer": {"num_generations": 2,
                                                                           "per_device_train_batch_size": 4}}),
                             stages=("rl",))
        validate_experiment(loaded, ("rl",))
