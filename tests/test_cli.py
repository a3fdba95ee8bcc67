"""The CLI shell: help is instant and light, errors are one line with exit code 2, validate prints what it will do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

HEAVY = ("torch", "transformers", "trl", "peft", "datasets")
COMMANDS = ["prepare-data", "sft", "train-rl", "evaluate", "export", "validate", "presets", "tiny-model",
            "pipeline", "quickstart", "report", "rewards", "estimate"]


@pytest.mark.parametrize("args", [["--help"], *[[c, "--help"] for c in COMMANDS]])
def test_help_imports_no_heavy_library(args):
    code = (
        "import sys\nfrom rlr.cli import main\nsys.argv=['rlr', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        f"heavy=[m for m in {HEAVY!r} if m in sys.modules]\nassert not heavy, heavy\n"
    )
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "Usage" in out.stdout


def test_version(cli):
    r = cli("--version")
    assert r.code == 0 and r.stdout.startswith("rlr 0.")


def test_every_stage_command_takes_the_common_flags(cli):
    for command in ["prepare-data", "sft", "train-rl", "evaluate", "export"]:
        r = cli(command, "--help")
        for flag in ["--dry-run", "--json", "--overwrite", "--resume", "--debug"]:
            assert flag in r.stdout, (command, flag)


def test_validate_json_shows_resolved_config_trl_config_and_device(cli, make_preset):
    r = cli("validate", make_preset(rl={"algorithm": "dapo", "trainer": {"num_generations": 2}}), "--json",
            "rl.trainer.learning_rate=3e-6")
    assert r.code == 0, r.stderr
    payload = json.loads(r.stdout)
    assert payload["device"]["device"] == "cpu" and payload["device"]["dtype"] == "float32"
    rl = payload["trl"]["rl"]
    assert rl["learning_rate"] == 3e-6 and rl["use_cpu"] is True and rl["bf16"] is False
    assert rl["epsilon_high"] == 0.28 and rl["loss_type"] == "dapo"
    assert payload["algorithm"]["bundle_trainer_fields"]["epsilon_high"] == 0.28
    assert payload["config"]["rl"]["dynamic_sampling"]["enabled"] is True


def test_validate_a_gpu_preset_on_cpu(cli):
    r = cli("validate", "gsm8k/qwen2.5-0.5b-grpo")
    assert r.code == 0, r.stderr
    assert "bf16=False" in r.stderr and "config OK" in r.stderr


def test_user_errors_exit_2_with_one_line_and_no_traceback(cli, make_preset):
    r = cli("validate", make_preset(), "run.sed=3")
    assert r.code == 2
    assert r.stderr.strip() == "error: run.sed: unknown key; did you mean 'seed'? (in command line)"
    assert "Traceback" not in r.stderr


def test_debug_shows_the_traceback(make_preset):
    p = make_preset()
    out = subprocess.run([sys.executable, "-m", "rlr", "validate", str(p), "run.sed=3", "--debug"],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 2 and "Traceback" in out.stderr and "ConfigError" in out.stderr  # same code as without
    assert out.stderr.strip().splitlines()[-1].startswith("error: run.sed: unknown key")


@pytest.mark.parametrize("args,message", [
    (["train-rl", "x.yaml", "--bogus"], "No such option: --bogus"),
    (["train-rl"], "Missing argument"),
    (["nosuchcmd"], "No such command 'nosuchcmd'"),
    (["evaluate", "x.yaml", "--limit", "abc"], "Invalid value for '--limit'"),
    (["presets", "list", "--json"], "No such option: --json"),
])
def test_command_line_usage_errors_exit_2_with_usage_not_a_failed_run(cli, args, message):
    r = cli(*args)
    assert r.code == 2 and message in r.stderr and "Usage: rlr" in r.stderr
    assert "the run failed" not in r.stderr and "Traceback" not in r.stderr


def test_a_malformed_list_override_is_a_config_error(cli, make_preset):
    r = cli("validate", make_preset(), "eval.k=[1,8")
    assert r.code == 2
    assert r.stderr.strip() == ("error: eval.k: expected a list, got '[1,8' (not valid YAML; write e.g. [1, 8]) "
                                "(in command line)")


def test_dry_run_writes_nothing(cli, make_preset, tmp_path):
    r = cli("train-rl", make_preset(), "--dry-run")
    assert r.code == 0, r.stderr
    assert "TRL config for rl" in r.stderr
    assert not (tmp_path / "runs").exists()


def test_presets_list_and_show(cli):
    r = cli("presets", "list")
    assert r.code == 0 and "quickstart" in r.stdout and "algorithms/dapo" in r.stdout
    r = cli("presets", "show", "quickstart")
    assert r.code == 0 and "run:" in r.stdout
    r = cli("presets", "show", "quickstrat")
    assert r.code == 2 and "did you mean 'quickstart'" in r.stderr


def test_tiny_model_command(cli, tmp_path):
    out = tmp_path / "tiny"
    r = cli("tiny-model", out, "--size", "micro")
    assert r.code == 0, r.stderr
    assert (out / "config.json").is_file() and (out / "tokenizer.json").is_file()
    r = cli("tiny-model", tmp_path, "--size", "nano")
    assert r.code == 2  # tmp_path is not empty and holds no model


def test_more_bad_input_exits_2_naming_the_fix(cli, tmp_path, monkeypatch):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    r = cli("tiny-model", a_file)
    assert r.code == 2 and "is a file; give a directory" in r.stderr
    r = cli("validate", "quickstart", "rl.algorithm=ppo")
    assert r.code == 2 and "ppo (with a learned critic) is not in TRL 1.16" in r.stderr
    monkeypatch.setenv("RLR_PRESETS", str(tmp_path / "nowhere"))
    r = cli("presets", "list")
    assert r.code == 2 and "RLR_PRESETS=" in r.stderr and "is not a directory" in r.stderr


def test_a_preset_library_without_algorithms_says_so(cli, make_preset, tmp_path, monkeypatch):
    """RLR_PRESETS at a library of one's own presets: every RL preset failed with "unknown algorithm 'grpo'
    (available: )", which names neither the library nor the fix."""
    (tmp_path / "lib").mkdir()
    monkeypatch.setenv("RLR_PRESETS", str(tmp_path / "lib"))
    r = cli("validate", make_preset())
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:") or line.startswith("  -")]
    assert r.code == 2 and any(f"RLR_PRESETS={tmp_path / 'lib'} has no algorithms/" in e for e in errors), r.stderr


def sft_only_quickstart(tmp_path, model) -> Path:
    """The quickstart preset without its rl section and with `rewards: []`, cut to a one-step SFT on `model`."""
    data = yaml.safe_load((REPO / "presets" / "quickstart.yaml").read_text())
    del data["rl"], data["pipeline"]
    data["rewards"] = []
    data["run"] = {"name": "sft-only", "output_dir": str(tmp_path / "runs"), "seed": 0}
    data["model"] = {"name_or_path": str(model)}
    data["data"]["train"]["rows"], data["data"]["eval"]["rows"] = 32, 8
    data["sft"]["stop_at"] = {"value": None}
    data["sft"]["trainer"].update(max_steps=1, per_device_train_batch_size=8)
    path = tmp_path / "sft-only.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_an_sft_only_preset_validates_and_trains(cli, tmp_path, micro_model):
    """`rlr validate` ran the rl checks on every preset, so one without rl failed demanding a reward."""
    preset = sft_only_quickstart(tmp_path, micro_model)
    r = cli("validate", preset)
    assert r.code == 0, r.stderr
    assert "config OK" in r.stderr and "rl stage not checked" in r.stderr and "pipeline.stages" in r.stderr
    r = cli("validate", preset, "--json")
    payload = json.loads(r.stdout)
    assert r.code == 0 and list(payload["trl"]) == ["sft"] and "no rewards" in payload["skipped"]["rl"]
    assert cli("prepare-data", preset).code == 0
    r = cli("sft", preset, "--json")
    assert r.code == 0, r.stderr
    assert (tmp_path / "runs" / "sft-only" / "sft" / "model" / "model.safetensors").is_file()


@pytest.mark.parametrize("extra", [["rl.trainer.beta=0"], ["pipeline.stages=[data,sft,rl]"]])
def test_a_preset_that_configures_rl_still_needs_a_reward(cli, tmp_path, micro_model, extra):
    r = cli("validate", sft_only_quickstart(tmp_path, micro_model), *extra)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert r.code == 2 and len(errors) == 1 and errors[0].startswith("error: rewards: train-rl needs"), r.stderr
    assert "Traceback" not in r.stderr
