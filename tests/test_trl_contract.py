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
    from pathlib import Path

    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert '"trl>=1.16,<1.17"' in pyproject  # the pin and TESTED_TRL_MINOR move together


@pytest.fixture(scope="module")
def grpo_trainer(micro_model, tmp_path_factory):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    def reward_len(completions, **kwargs):
        return [float(len(c) % 3) for c in completions]

    out = tmp_path_factory.mktemp("contract")
    args = GRPOConfig(output_dir=str(out), per_device_train_batch_size=4, num_generations=4, max_completion_length=6,
                      max_steps=1, logging_steps=1, report_to=[], use_cpu=True, save_strategy="no", seed=0,
                      dataloader_num_workers=0)
    data = Dataset.from_list([{"prompt": f"{i}+{i}="} for i in range(8)])
    model = AutoModelForCausalLM.from_pretrained(micro_model)
    return GRPOTrainer(model=model, reward_funcs=reward_len, args=args, train_dataset=data,
                       processing_class=AutoTokenizer.from_pretrained(micro_model))


def test_generation_hook_exists_and_returns_only_keys_rlr_can_merge(grpo_trainer):
    ti.check_generation_hook(type(grpo_trainer))  # raises if renamed
    grpo_trainer.model.train()
    inputs = [{"prompt": "1+1="}] * 4
    out = getattr(grpo_trainer, ti.GENERATION_HOOK)(inputs)
    keys = {k for k, v in out.items() if v is not None}
    assert keys <= ti.GENERATION_KNOWN_KEYS, f"TRL returns keys rlr does not know: {keys - ti.GENERATION_KNOWN_KEYS}"
    assert {"prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "advantages"} <= keys
    assert out["advantages"].shape[0] == out["completion_ids"].shape[0] == 4


def test_grpo_logs_the_keys_rlr_reads(grpo_trainer):
    grpo_trainer.train()
    logged = {k for entry in grpo_trainer.state.log_history for k in entry}
    for key in (ti.reward_mean_key("reward_len"), ti.LOG_FRAC_REWARD_ZERO_STD, ti.LOG_CLIPPED_RATIO,
                ti.LOG_MEAN_LENGTH, ti.LOG_ENTROPY):
        assert key in logged, f"TRL no longer logs {key!r}"


def test_sft_logs_its_token_counter(micro_model, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=2, logging_steps=1,
                     report_to=[], use_cpu=True, save_strategy="no", max_length=32, dataloader_num_workers=0)
    data = Dataset.from_list([{"text": f"{i}+{i}={2 * i}"} for i in range(8)])
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(micro_model), args=args, train_dataset=data,
                         processing_class=AutoTokenizer.from_pretrained(micro_model))
    trainer.train()
    tokens = [e[ti.LOG_SFT_TOKENS] for e in trainer.state.log_history if ti.LOG_SFT_TOKENS in e]
    assert len(tokens) == 2 and 0 < tokens[0] < tokens[1]
    assert ti.sft_tokens_per_second(trainer.state.log_history, 0, 1.0) == tokens[-1]


def test_a_missing_hook_fails_with_the_fix():
    from rlr.errors import UserError

    class NoHook:
        pass

    with pytest.raises(UserError, match="install trl==1.16"):
        ti.check_generation_hook(NoHook, "rl.whiten_advantages")
