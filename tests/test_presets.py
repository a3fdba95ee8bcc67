"""Every shipped preset loads and validates (torchtune's test_configs): presets are user API."""

from __future__ import annotations

import pytest

from rlr.checks import load_experiment, validate_experiment
from rlr.presets import list_presets, preset_summary, presets_dir

ALL = list_presets()


@pytest.mark.parametrize("name", ALL)
def test_shipped_preset_validates(name):
    path = presets_dir() / f"{name}.yaml"
    assert preset_summary(path), f"{name}: every preset starts with a comment saying what it is"
    if name.startswith(("algorithms/", "accelerate/", "benchmarks/")):
        return  # fragments: exercised through the experiments that extend them
    loaded = load_experiment(path, stages=("sft", "rl"))
    report = validate_experiment(loaded)
    assert report["trl"]["rl"]["output_dir"].endswith(f"{loaded.cfg.run.name}/rl")


def test_every_algorithm_has_a_bundle_and_validates(make_preset):
    algorithms = [n.split("/")[1] for n in ALL if n.startswith("algorithms/")]
    assert {"grpo", "dr_grpo", "dapo", "gspo", "bnpo", "cispo", "sapo", "rloo", "reinforce_pp"} <= set(algorithms)
    for name in algorithms:
        loaded = load_experiment(make_preset(rl={"algorithm": name, "trainer": {"num_generations": 2,
                                                                           "per_device_train_batch_size": 4}}),
                             stages=("rl",))
        validate_experiment(loaded, ("rl",))


def test_the_wheel_ships_the_preset_library(tmp_path):
    """`pip install rlr` (no source tree) finds the same presets as a checkout: they ship as rlr/_presets."""
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    pytest.importorskip("hatchling")
    repo = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(repo)], check=True, capture_output=True)
    wheel = zipfile.ZipFile(next((tmp_path / "dist").glob("rlr-*.whl")))
    shipped = {n.removeprefix("rlr/_presets/") for n in wheel.namelist() if n.startswith("rlr/_presets/")}
    source = {str(p.relative_to(repo / "presets")) for p in (repo / "presets").rglob("*.yaml")}
    assert shipped == source

    wheel.extractall(tmp_path / "site")
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("RLR_PRESETS", "PYTHONPATH")}
    probe = "from rlr.presets import presets_dir, list_presets; print(presets_dir()); print(len(list_presets()))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env={**env, "PYTHONPATH": str(tmp_path / "site")}).stdout.split()
    assert out == [str(tmp_path / "site" / "rlr" / "_presets"), str(len(source))]
