"""The contract with TRL's internals (rlr/trl_internals.py), checked against the real TRL installed.

Each assumption rlr makes about a non-public TRL behaviour is exercised once here: if a TRL upgrade renames the
generation hook, adds a key to its output that dynamic sampling cannot merge, or renames a log key the progress
bar, the accuracy metric or the report read, this file fails before any user's run does.
"""

from __future__ import annotations

import pytest
import trl

from rlr import trl_internals as ti


def test_installed_trl_is_the_tested_minor_version_and_pyproject_pins_it():
    assert trl.__version__.startswith(ti.TESTED_TRL_MINOR + "."), trl.__version__
    assert all(v.startswith(ti.TESTED_TRL_MINOR + ".") for v in ti.TESTED_TRL)
    from pathlib import Path

    major, minor = ti.TESTED_TRL_MINOR.split(".")
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert f'"trl>={ti.TESTED_TRL_MINOR},<{major}.{int(minor) + 1}"' in pyproject  # the pin moves with TESTED_TRL


@pytest.mark.parametrize(("installed", "warns"), [("1.17.0", True), ("2.0.1", True), ("1.16.3", False),
                                                  (ti.TESTED_TRL[0], False)])
def test_an_untested_trl_version_is_one_warning_line_naming_both_versions(installed, warns, monkeypatch, capsys):
    monkeypatch.setattr(ti, "installed_trl_version", lambda: installed)
    ti.check_trl_version()
    err = capsys.readouterr().err
    if not warns:
        assert err == ""
        return
    assert err.count("\n") == 1 and err.startswith("warning: ")
    assert f"trl {installed} is installed" in err and ", ".join(ti.TESTED_TRL) in err


def test_the_version_check_reads_metadata_without_importing_trl():
    import subprocess
    import sys

    code = ("import sys; from rlr import trl_internals as ti; v = ti.installed_trl_version(); "
            "assert 'trl' not in sys.modules and 'torch' not in sys.modules, sorted(sys.modules); print(v)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == trl.__version__


def test_validate_and_dry_run_warn_about_an_untested_trl(cli, tmp_path, micro_model, monkeypatch):
    from rl_helpers import rl_preset

    monkeypatch.setattr(ti, "installed_trl_version", lambda: "9.9.0")
    preset = rl_preset(tmp_path, micro_model, "version_check", "grpo")
    for args in (["validate", preset], ["train-rl", preset, "--dry-run"]):
        r = cli(*args)
        assert r.code == 0, r.stderr
        assert "warning: trl 9.9.0 is installed" in r.stderr, args


def test_a_training_stage_warns_before_loading_the_model(tmp_path, micro_model, monkeypatch, capsys):
    from rl_helpers import rl_preset

    from rlr.config.load import load_config
    from rlr.stage import StageOptions
    from rlr.train import training_stage

    monkeypatch.setattr(ti, "installed_trl_version", lambda: "9.9.0")
    loaded = load_config(rl_preset(tmp_path, micro_model, "version_check_stage", "grpo"))
    training_stage.prepare(loaded.cfg, StageOptions(), "rl", use_lora=True)  # what run_sft / run_rl call first
    assert "warning: trl 9.9.0 is installed" in capsys.readouterr().err


def reward_len(completions, **kwargs):
    return [float(len(c) % 3) for c in completions]


@pytest.fixture(scope="module")
def reference_dir(micro_model, tmp_path_factory):
    """A copy of the micro model with other weights: what the merged SFT weights are to a full-parameter RL run."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(micro_model)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.5)
    out = tmp_path_factory.mktemp("reference")
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def grpo_trainer(micro_model, reference_dir, tmp_path_factory):
    """beta > 0 and the reference pointed elsewhere, as rlr/train/rl.py does for RL after full-parameter SFT."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    out = tmp_path_factory.mktemp("contract")
    args = GRPOConfig(output_dir=str(out), per_device_train_batch_size=4, num_generations=4, max_completion_length=6,
                      max_steps=1, logging_steps=1, report_to=[], use_cpu=True, save_strategy="no", seed=0,
                      dataloader_num_workers=0, beta=0.04)
    data = Dataset.from_list([{"prompt": f"{i}+{i}="} for i in range(8)])
    model = AutoModelForCausalLM.from_pretrained(micro_model)
    ti.point_reference_model_at(model, str(reference_dir))
    return GRPOTrainer(model=model, reward_funcs=reward_len, args=args, train_dataset=data,
                       processing_class=AutoTokenizer.from_pretrained(micro_model))


@pytest.fixture(scope="module")
def rloo_trainer(micro_model, tmp_path_factory):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import RLOOConfig, RLOOTrainer

    out = tmp_path_factory.mktemp("contract_rloo")
    args = RLOOConfig(output_dir=str(out), per_device_train_batch_size=4, num_generations=4, max_completion_length=6,
                      max_steps=1, logging_steps=1, report_to=[], use_cpu=True, save_strategy="no", seed=0,
                      dataloader_num_workers=0)
    data = Dataset.from_list([{"prompt": f"{i}+{i}="} for i in range(8)])
    return RLOOTrainer(model=AutoModelForCausalLM.from_pretrained(micro_model), reward_funcs=reward_len, args=args,
                       train_dataset=data, processing_class=AutoTokenizer.from_pretrained(micro_model))


def _check_hook_output(trainer, row_keys: set[str]) -> None:
    """What rlr/train/dynamic_sampling.py and advantages.py rely on: only keys they know how to merge, padded 2-D
    tensors with one row per completion, and the per-row keys they split and whiten."""
    ti.check_generation_hook(type(trainer))  # raises if renamed
    trainer.model.train()
    out = getattr(trainer, ti.GENERATION_HOOK)([{"prompt": "1+1="}] * 4)
    keys = {k for k, v in out.items() if v is not None}
    assert keys <= ti.GENERATION_KNOWN_KEYS, f"TRL returns keys rlr does not know: {keys - ti.GENERATION_KNOWN_KEYS}"
    assert {"prompt_ids", "prompt_mask", "completion_ids", "completion_mask"} | row_keys <= keys
    for key in keys & set(ti.GENERATION_PADDED_KEYS):
        assert out[key].dim() == 2 and out[key].shape[0] == 4, key
    for key in keys & ti.GENERATION_ROW_KEYS:
        assert out[key].shape == (4,), key
    assert out["completion_mask"].shape == out["completion_ids"].shape


def test_generation_hook_exists_and_returns_only_keys_rlr_can_merge(grpo_trainer):
    _check_hook_output(grpo_trainer, {"advantages", "ref_per_token_logps"})  # beta > 0: the reference's logps


def test_rloo_generation_hook_returns_only_keys_rlr_can_merge(rloo_trainer):
    _check_hook_output(rloo_trainer, {"advantages", "old_logps"})


def test_the_reference_model_is_built_from_the_policys_name_or_path(grpo_trainer, reference_dir, micro_model):
    """rlr points `config._name_or_path` at the merged SFT weights; a TRL that built the reference any other way
    would silently take the KL against the base model instead."""
    import torch
    from transformers import AutoModelForCausalLM

    expected = AutoModelForCausalLM.from_pretrained(reference_dir).state_dict()
    ref = grpo_trainer.accelerator.unwrap_model(grpo_trainer.ref_model).state_dict()
    base = AutoModelForCausalLM.from_pretrained(micro_model).state_dict()
    assert ref.keys() == expected.keys()
    assert all(torch.equal(ref[k].cpu(), expected[k]) for k in expected)
    assert not all(torch.equal(ref[k].cpu(), base[k]) for k in base)


def test_grpo_logs_the_keys_rlr_reads(grpo_trainer):
    grpo_trainer.train()
    logged = {k for entry in grpo_trainer.state.log_history for k in entry}
    for key in (ti.reward_mean_key("reward_len"), ti.LOG_REWARD, ti.LOG_REWARD_STD, ti.LOG_FRAC_REWARD_ZERO_STD,
                ti.LOG_CLIPPED_RATIO, ti.LOG_MEAN_LENGTH, ti.LOG_MAX_LENGTH, ti.LOG_ENTROPY, ti.LOG_KL,
                *ti.LOG_CLIP_RATIOS, ti.LOG_LOSS, ti.LOG_GRAD_NORM, ti.LOG_LEARNING_RATE):
        assert key in logged, f"TRL no longer logs {key!r}"
    assert ti.reward_name_of(ti.reward_mean_key("reward_len")) == "reward_len"


def test_grpo_with_tools_logs_the_tool_keys_rlr_reads(tmp_path):
    """The tool loop's keys (`rlr report`'s "Tool calls" panel): TRL logs them whenever the trainer has tools, so a
    random model that never calls one still logs them (0.0)."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from rlr.models.tiny import attach_tool_parser, build_tiny_model
    from rlr.tools.calculator import calculator

    model_dir = build_tiny_model(tmp_path / "micro", size="micro", seed=0, max_positions=1024)  # room for the tools
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    attach_tool_parser(tokenizer)  # what rlr/envs/rollout_tools.py does for a tool run on the tiny model
    args = GRPOConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, num_generations=4,
                      max_completion_length=6, max_steps=1, logging_steps=1, report_to=[], use_cpu=True,
                      save_strategy="no", seed=0, dataloader_num_workers=0, max_tool_calling_iterations=1)
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": f"{i}*{i}="}]} for i in range(4)])
    trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(model_dir), reward_funcs=reward_len, args=args,
                          train_dataset=data, processing_class=tokenizer, tools=[calculator])
    trainer.train()
    logged = {k for entry in trainer.state.log_history for k in entry}
    for key in (ti.LOG_TOOL_CALL_FREQUENCY, ti.LOG_TOOL_FAILURE_FREQUENCY):
        assert key in logged, f"TRL no longer logs {key!r}"


def test_the_tiny_models_response_template_is_trls_qwen_one_without_reasoning():
    """rlr/models/tiny.py parses tool calls with it; GRPOTrainer switches to parse_response on its attribute."""
    import copy
    import inspect

    from trl.chat_template_utils import qwen3_template
    from trl.trainer import grpo_trainer

    trls = copy.deepcopy(qwen3_template)
    del trls["fields"]["reasoning_content"]
    assert trls == ti.QWEN_TOOL_RESPONSE_TEMPLATE
    assert f'"{ti.RESPONSE_TEMPLATE_ATTR}"' in inspect.getsource(grpo_trainer)


def test_sft_logs_its_token_counter_and_the_keys_rlr_reads(micro_model, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=2, logging_steps=1,
                     report_to=[], use_cpu=True, save_strategy="no", max_length=32, dataloader_num_workers=0)
    data = Dataset.from_list([{"text": f"{i}+{i}={2 * i}"} for i in range(8)])
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(micro_model), args=args, train_dataset=data,
                         processing_class=AutoTokenizer.from_pretrained(micro_model))
    trainer.train()
    logged = {k for entry in trainer.state.log_history for k in entry}
    for key in (ti.LOG_LOSS, ti.LOG_GRAD_NORM, ti.LOG_LEARNING_RATE, ti.LOG_SFT_TOKEN_ACCURACY):
        assert key in logged, f"TRL no longer logs {key!r}"
    tokens = [e[ti.LOG_SFT_TOKENS] for e in trainer.state.log_history if ti.LOG_SFT_TOKENS in e]
    assert len(tokens) == 2 and 0 < tokens[0] < tokens[1]
    assert ti.sft_tokens_per_second(trainer.state.log_history, 0, 1.0) == tokens[-1]


def test_a_missing_hook_fails_with_the_fix():
    from rlr.errors import UserError

    class NoHook:
        pass

    with pytest.raises(UserError, match="install trl==1.16"):
        ti.check_generation_hook(NoHook, "rl.whiten_advantages")
