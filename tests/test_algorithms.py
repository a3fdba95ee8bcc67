"""Algorithm bundles: each pins the values its paper gives, and each trains end to end on the micro model."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from rl_helpers import prepare, rl_preset

from rlr.config.load import algorithm_names, load_bundle

# bundle -> (trainer class, the fields the paper fixes). The comment names where each value comes from.
PAPER_VALUES = {
    # DeepSeekMath (arXiv:2402.03300) sec. 4.2: "The KL coefficient is 0.04"; group-normalised advantages (eq. 3),
    # per-sequence length-normalised objective; clip 0.2 is PPO's (the paper gives none).
    "grpo": ("grpo", {"loss_type": "grpo", "scale_rewards": "group", "beta": 0.04, "epsilon": 0.2}),
    # Dr. GRPO (arXiv:2503.20783) sec. 3.2: drop the 1/|o_i| length term and the std division; no KL.
    "dr_grpo": ("grpo", {"loss_type": "dr_grpo", "scale_rewards": "none", "beta": 0.0}),
    # DAPO (arXiv:2503.14476) sec. 4.1: eps_low 0.2, eps_high 0.28, token-level loss, no KL (sec. 2.3), overlong
    # filtering + soft punishment with a 4096-token cache of 20480 (= 0.2), dynamic sampling.
    "dapo": ("grpo", {"loss_type": "dapo", "epsilon": 0.2, "epsilon_high": 0.28, "beta": 0.0,
                      "mask_truncated_completions": True}),
    # GSPO (arXiv:2507.18071 v2) sec. 5.1: sequence-level ratio, clip ranges 3e-4 / 4e-4, no KL.
    "gspo": ("grpo", {"importance_sampling_level": "sequence", "epsilon": 3e-4, "epsilon_high": 4e-4, "beta": 0.0}),
    # bnpo: TRL's loss aggregation by the active tokens of the local batch (TRL cites no paper for it).
    "bnpo": ("grpo", {"loss_type": "bnpo"}),
    # CISPO (MiniMax-M1, arXiv:2506.13585): clipped IS weight with an upper bound; TRL/ScaleRL use eps_high 5.0.
    "cispo": ("grpo", {"loss_type": "cispo", "epsilon_high": 5.0}),
    # SAPO (arXiv:2511.20347): soft gate, tau_pos 1.0 and tau_neg 1.05, group-normalised advantages.
    "sapo": ("grpo", {"loss_type": "sapo", "sapo_temperature_pos": 1.0, "sapo_temperature_neg": 1.05,
                      "scale_rewards": "group"}),
    # RLOO (arXiv:2402.14740) appendix C: KL coefficient 0.03, leave-one-out baseline (RLOOTrainer).
    "rloo": ("rloo", {"beta": 0.03}),
    # REINFORCE++-baseline (arXiv:2501.03262): group-mean baseline, then batch-level normalisation; token-level loss.
    "reinforce_pp": ("grpo", {"scale_rewards": "batch", "loss_type": "dapo"}),
}
DAPO_RL = {"dynamic_sampling": {"enabled": True, "max_rounds": 3}, "overlong_buffer": 0.2}
# Optimiser steps per generation batch (1 = on-policy, where the ratio is 1 and clipping never acts).
# DAPO sec. 4.1: 512 prompts x 16 samples per rollout, mini-batches of 512 -> 16; GSPO sec. 5.1: "four minibatches";
# SAPO follows GSPO's setup; CISPO 4 is rlr's choice so its IS cap can act (no count given).
UPDATES_PER_GENERATION = {"dapo": 16, "gspo": 4, "sapo": 4, "cispo": 4}


def test_every_bundle_is_pinned():
    assert sorted(PAPER_VALUES) == algorithm_names()


@pytest.mark.parametrize("name", sorted(PAPER_VALUES))
def test_bundle_matches_paper(name):
    bundle = load_bundle(name)
    trainer_type, fields = PAPER_VALUES[name]
    assert bundle["algorithm"] == name
    assert bundle["trainer_type"] == trainer_type
    for key, value in fields.items():
        assert bundle["trainer"][key] == value, f"{name}: {key}"
    if name == "dapo":
        assert {k: bundle[k] for k in DAPO_RL} == DAPO_RL
    assert bundle.get("updates_per_generation", 1) == UPDATES_PER_GENERATION.get(name, 1), name
    assert bundle.get("whiten_advantages", False) == (name == "reinforce_pp")  # the paper's batch normalisation


@pytest.mark.parametrize("name", sorted(PAPER_VALUES))
def test_bundle_builds_its_trl_config(name, make_preset):
    from rlr.checks import load_experiment
    from rlr.device import resolve_device
    from rlr.train.rl_config import build_trl_config

    loaded = load_experiment(make_preset(rl={"algorithm": name}), [], stages=("rl",))
    device = resolve_device()
    args = build_trl_config(loaded, device)
    trainer_type, fields = PAPER_VALUES[name]
    assert type(args).__name__ == ("RLOOConfig" if trainer_type == "rloo" else "GRPOConfig")
    # k optimiser steps per generation: TRL generates every k x gradient_accumulation_steps micro-batches
    assert args.steps_per_generation == UPDATES_PER_GENERATION.get(name, 1) * args.gradient_accumulation_steps
    for key, value in fields.items():
        assert getattr(args, key) == value


def test_validate_shows_the_weight_of_the_overlong_reward_dapo_adds(make_preset):
    from rlr.checks import load_experiment
    from rlr.device import resolve_device
    from rlr.train.rl import reward_setup
    from rlr.train.rl_config import build_trl_config

    device = resolve_device()
    for rewards, expected in (([{"name": "accuracy"}], [1.0, 1.0]),  # accuracy + the overlong one dapo adds
                              ([{"name": "accuracy"}, {"name": "overlong", "weight": 0.5}], [1.0, 0.5])):
        loaded = load_experiment(make_preset(rl={"algorithm": "dapo"}, rewards=rewards), [], stages=("rl",))
        args = build_trl_config(loaded, device)  # what `rlr validate` shows
        funcs, weights = reward_setup(loaded, args.max_completion_length)  # what train-rl trains with
        assert args.reward_weights == weights == expected and len(funcs) == len(expected)


def test_length_rewards_measure_against_the_runs_completion_budget(make_preset):
    from rlr.checks import load_experiment
    from rlr.train.rl import reward_setup

    rewards = [{"name": "overlong"}, {"name": "cosine"}, {"name": "overlong", "args": {"soft_punish_cache": 8}}]
    loaded = load_experiment(make_preset(rewards=rewards, rl={"trainer": {"max_completion_length": 64}}), [],
                             stages=("rl",))
    funcs, _ = reward_setup(loaded, 64)
    assert (funcs[0].max_completion_len, funcs[0].soft_punish_cache) == (64, 13)  # DAPO's 20% of the budget
    assert funcs[1].max_len == 64 and (funcs[2].max_completion_len, funcs[2].soft_punish_cache) == (64, 8)
    from rlr.errors import ConfigError

    too_big = [{"name": "overlong", "args": {"soft_punish_cache": 100}}]  # more than the 64-token budget
    with pytest.raises(ConfigError, match=r"rewards\[0\].args: reward 'overlong': bad args"):
        load_experiment(make_preset(rewards=too_big, rl={"trainer": {"max_completion_length": 64}}), [],
                        stages=("rl",))


def test_user_trainer_keys_override_the_bundle(make_preset):
    from rlr.config.load import load_config

    loaded = load_config(make_preset(rl={"algorithm": "grpo", "trainer": {"beta": 0.0}}), [])
    assert loaded.cfg.rl.trainer["beta"] == 0.0 and loaded.cfg.rl.trainer["loss_type"] == "grpo"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", sorted(PAPER_VALUES))
def test_bundle_trains_end_to_end(name, cli, tmp_path, micro_model, monkeypatch):
    """2 steps on the micro model: metrics written, LoRA adapter trained, base weights untouched (TRL's pattern);
    an off-policy bundle trains on stored old log-probs, so its clip range / IS weights can act."""
    import trl
    from safetensors.torch import load_file

    trainer_cls = trl.RLOOTrainer if PAPER_VALUES[name][0] == "rloo" else trl.GRPOTrainer
    old_logps: list[bool] = []
    advantages: list = []
    original = trainer_cls.compute_loss

    def spy(self, model, inputs, *args, **kwargs):
        old_logps.append(inputs.get("old_per_token_logps") is not None)
        advantages.append(inputs["advantages"].detach().clone())
        return original(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(trainer_cls, "compute_loss", spy)

    base_weights = micro_model / "model.safetensors"
    before = _sha(base_weights)
    # the micro model never stops inside 8 tokens: DAPO's overlong filtering would mask every completion
    trainer = {"mask_truncated_completions": False} if name == "dapo" else {}
    preset = rl_preset(tmp_path, micro_model, f"algo-{name}", name, trainer=trainer)
    prepare(cli, preset)

    result = cli("train-rl", preset)
    assert result.code == 0, result.stderr
    rl = tmp_path / "runs" / f"algo-{name}" / "rl"
    steps = [m["step"] for m in map(_json, (rl / "metrics.jsonl").read_text().splitlines()) if "loss" in m]
    assert steps == [1, 2]
    adapter = load_file(rl / "model" / "adapter_model.safetensors")
    assert adapter and all("lora_" in k for k in adapter)  # only adapter weights are trained and saved
    assert any(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)  # lora_B starts at zero
    assert _sha(base_weights) == before
    if name in UPDATES_PER_GENERATION:  # off-policy: TRL stored the generating policy's log-probs
        assert old_logps and all(old_logps), old_logps
    elif trainer_cls is trl.GRPOTrainer:  # on-policy: TRL skips them (the ratio is 1 by construction)
        assert old_logps and not any(old_logps), old_logps
    if name == "reinforce_pp":  # whitened over the batch (each loss call sees the whole generation batch here)
        assert any(adv.std() > 0 for adv in advantages)  # there was something to whiten
        for adv in advantages:
            if adv.std() > 0:
                assert abs(adv.mean().item()) < 1e-5 and abs(adv.std(unbiased=False).item() - 1) < 1e-4, adv


def _json(line: str) -> dict:
    import json

    return json.loads(line)
