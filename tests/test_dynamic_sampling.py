"""DAPO dynamic sampling: the group filter, re-padding, the resampling loop (on a fake trainer) and end to end."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from rl_helpers import prepare, rl_preset

from rlr.errors import UserError
from rlr.train.dynamic_sampling import (
    DynamicSamplingMixin,
    check_hook,
    concat_batches,
    generated_per_kept_group,
    informative_groups,
    take_rows,
    with_dynamic_sampling,
)

PAD = 0
G = 2


def make_batch(group_advantages: list[tuple[float, ...]], prompt_len: int = 3, completion_len: int = 4,
               tag: int = 1) -> dict:
    """A generation batch shaped like TRL 1.16's output; token ids carry `tag` so tests can tell batches apart."""
    adv = torch.tensor([a for group in group_advantages for a in group])
    b = len(adv)
    return {
        "prompt_ids": torch.full((b, prompt_len), tag), "prompt_mask": torch.ones(b, prompt_len, dtype=torch.long),
        "completion_ids": torch.full((b, completion_len), tag),
        "completion_mask": torch.ones(b, completion_len, dtype=torch.long),
        "advantages": adv, "num_items_in_batch": torch.tensor(b * completion_len),
        "old_per_token_logps": None,
    }


def test_informative_groups_reads_the_advantages():
    adv = torch.tensor([0.0, 0.0, 0.7, -0.7, 1e-9, -1e-9, 0.0, 0.3])
    assert informative_groups(adv, 2).tolist() == [False, True, False, True]
    per_token = adv[:, None].expand(8, 3)  # (B, T) advantages, as subclasses may return
    assert informative_groups(per_token, 2).tolist() == [False, True, False, True]


def test_equal_rewards_are_uninformative_even_when_scaling_leaves_a_nonzero_advantage():
    # TRL's group scaling: (r - mean) / (std + 1e-4). Eight 0.1 rewards (all wrong, all well formatted) in float32
    # leave rounding noise in std, so every advantage is the same small non-zero number.
    rewards = torch.tensor([1.0] * 8) * 0.1
    mean, std = rewards.mean(), rewards.std()
    advantages = torch.cat([(rewards - mean) / (std + 1e-4), torch.tensor([1.0, -1.0] * 4)])
    assert informative_groups(advantages, 8).tolist() == [False, True]
    noisy = torch.full((8,), 7.4e-5)  # the value the review saw: far above a 1e-6 "zero", yet no signal
    assert informative_groups(noisy, 8).tolist() == [False]


def test_concat_repads_left_and_right():
    a = make_batch([(1.0, -1.0)], prompt_len=2, completion_len=3, tag=5)
    b = make_batch([(0.5, -0.5)], prompt_len=4, completion_len=1, tag=7)
    out = concat_batches([a, b], pad_token_id=PAD)
    assert out["prompt_ids"].shape == (4, 4) and out["completion_ids"].shape == (4, 3)
    assert out["prompt_ids"][0].tolist() == [PAD, PAD, 5, 5]  # prompts are left-padded
    assert out["completion_ids"][2].tolist() == [7, PAD, PAD]  # completions right-padded
    assert out["completion_mask"][2].tolist() == [1, 0, 0]
    assert out["num_items_in_batch"].item() == 2 * 3 + 2 * 1  # recomputed from the masks
    assert out["advantages"].tolist() == [1.0, -1.0, 0.5, -0.5]


def test_unknown_output_keys_are_refused():
    batch = make_batch([(1.0, -1.0)])
    batch["pixel_values"] = [torch.zeros(1)]
    with pytest.raises(UserError, match="dynamic_sampling.enabled=false"):
        take_rows(batch, torch.arange(2))


def test_missing_hook_fails_clearly():
    class NoHook:
        pass

    with pytest.raises(UserError, match="_generate_and_score_completions"):
        check_hook(NoHook)


class FakeTrainer:
    """Stands in for GRPOTrainer: returns prepared batches from `_generate_and_score_completions`."""

    def __init__(self, batches: list[dict], max_rounds: int):
        self.batches = iter(batches)
        self.calls: list[list[dict]] = []
        self.model = SimpleNamespace(training=True)
        self.num_generations = G
        self.args = SimpleNamespace(seed=0)
        self.state = SimpleNamespace(global_step=0)
        self.train_dataset = [{"prompt": f"q{i}"} for i in range(10)]
        self.processing_class = SimpleNamespace(pad_token_id=PAD)
        self.accelerator = SimpleNamespace(num_processes=1, process_index=0)
        self._ds_setup(max_rounds)

    def _generate_and_score_completions(self, inputs):
        self.calls.append(inputs)
        return next(self.batches)


FakeDS = type("FakeDS", (DynamicSamplingMixin, FakeTrainer), {})


def test_resamples_until_the_batch_is_full():
    batches = [make_batch([(0, 0), (1, -1), (0, 0)], tag=1),  # 1 of 3 groups informative
               make_batch([(0, 0), (0, 0), (0, 0)], tag=2),  # none
               make_batch([(2, -2), (3, -3), (0, 0)], tag=3)]  # two more: full
    trainer = FakeDS(batches, max_rounds=3)
    out = trainer._generate_and_score_completions([{"prompt": "p"}] * 6)
    assert out["advantages"].tolist() == [1, -1, 2, -2, 3, -3]
    assert out["completion_ids"][:, 0].tolist() == [1, 1, 3, 3, 3, 3]
    assert len(trainer.calls) == 3 and all(len(c) == 6 for c in trainer.calls)  # fresh prompts, G rows each
    assert trainer.calls[1][0] == trainer.calls[1][1]  # each fresh prompt repeated num_generations times
    stats = trainer.ds_pending[-1]
    assert stats["dynamic_sampling/zero_std_frac_before"] == pytest.approx(2 / 3)
    assert stats["dynamic_sampling/zero_std_frac_after"] == 0.0
    assert stats["dynamic_sampling/extra_rounds"] == 2
    assert stats["dynamic_sampling/extra_generations"] == 2 * 3 * G
    assert generated_per_kept_group(trainer.ds_totals) == pytest.approx(9 / 3)


def test_two_generation_batches_in_one_step_draw_different_fresh_prompts():
    trainer = FakeDS([], max_rounds=3)
    trainer.train_dataset = [{"prompt": f"q{i}"} for i in range(1000)]
    first = trainer._ds_fresh_inputs(4, 1)
    second = trainer._ds_fresh_inputs(4, 1)  # same global_step, next generation batch
    assert first != second
    trainer.state.global_step = 1
    again = FakeDS([], max_rounds=3)
    again.train_dataset, again.state.global_step = trainer.train_dataset, 1
    assert trainer._ds_fresh_inputs(4, 1) == again._ds_fresh_inputs(4, 1)  # a resumed run draws the same


def test_extra_rounds_draw_only_what_the_keep_rate_needs():
    batches = [make_batch([(1, -1), (2, -2), (0, 0)], tag=1),  # keep rate 2/3, one group missing
               make_batch([(0, 0), (3, -3)], tag=2)]  # so the next round draws ceil(1 / (2/3)) = 2 prompts
    trainer = FakeDS(batches, max_rounds=3)
    out = trainer._generate_and_score_completions([{"prompt": "p"}] * 6)
    assert [len(c) for c in trainer.calls] == [6, 2 * G]
    assert out["advantages"].tolist() == [1, -1, 2, -2, 3, -3]
    assert trainer.ds_pending[-1]["dynamic_sampling/extra_generations"] == 2 * G
    assert generated_per_kept_group(trainer.ds_totals) == pytest.approx(5 / 3)


def test_fills_with_dropped_groups_after_max_rounds():
    batches = [make_batch([(0, 0), (1, -1), (0, 0)], tag=1), make_batch([(0, 0), (0, 0), (0, 0)], tag=2)]
    trainer = FakeDS(batches, max_rounds=1)
    out = trainer._generate_and_score_completions([{"prompt": "p"}] * 6)
    assert out["advantages"].shape == (6,)
    assert informative_groups(out["advantages"], G).tolist() == [True, False, False]
    stats = trainer.ds_pending[-1]
    assert stats["dynamic_sampling/filled_groups"] == 2
    assert stats["dynamic_sampling/zero_std_frac_after"] == pytest.approx(2 / 3)


def test_no_extra_round_when_every_group_is_informative():
    trainer = FakeDS([make_batch([(1, -1), (1, -1)])], max_rounds=3)
    out = trainer._generate_and_score_completions([{"prompt": "p"}] * 4)
    assert len(trainer.calls) == 1 and out["advantages"].shape == (4,)
    assert trainer.ds_pending[-1]["dynamic_sampling/extra_rounds"] == 0


def test_eval_batches_pass_through():
    trainer = FakeDS([make_batch([(0, 0)])], max_rounds=3)
    trainer.model.training = False
    out = trainer._generate_and_score_completions([{"prompt": "p"}] * 2)
    assert out["advantages"].tolist() == [0, 0] and not trainer.ds_pending


def test_trl_trainers_have_the_hook():
    from trl import GRPOTrainer, RLOOTrainer

    for cls in (GRPOTrainer, RLOOTrainer):
        assert with_dynamic_sampling(cls).__mro__[1] is DynamicSamplingMixin


@pytest.mark.parametrize("algorithm", ["grpo", "rloo"])
def test_trained_batches_have_no_zero_variance_groups(algorithm, cli, tmp_path, micro_model, monkeypatch):
    """End to end on TRL's GRPOTrainer and RLOOTrainer: every row that reaches the loss has a non-zero advantage
    (binary reward, 2 generations: a row has zero advantage exactly when its group is constant), and the counts
    are logged."""
    import trl

    trainer_cls = trl.RLOOTrainer if algorithm == "rloo" else trl.GRPOTrainer
    seen: list[torch.Tensor] = []
    original = trainer_cls.compute_loss

    def spy(self, model, inputs, *args, **kwargs):
        seen.append(inputs["advantages"].detach().clone())
        return original(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(trainer_cls, "compute_loss", spy)
    preset = rl_preset(tmp_path, micro_model, "ds", algorithm, rewards=[{"name": "parity_reward.py:parity"}],
                       trainer={"max_steps": 3, "num_generations": G, "per_device_train_batch_size": 8,
                                **({"beta": 0.0} if algorithm == "rloo" else {})},  # rloo's KL is in the reward
                       dynamic_sampling={"enabled": True, "max_rounds": 8})
    prepare(cli, preset)
    result = cli("train-rl", preset)
    assert result.code == 0, result.stderr

    assert len(seen) == 3
    assert all((adv.abs() > 1e-6).all() for adv in seen)
    metrics = [json.loads(line) for line in (tmp_path / "runs/ds/rl/metrics.jsonl").read_text().splitlines()]
    steps = [m for m in metrics if "loss" in m]
    for key in ("zero_std_frac_before", "zero_std_frac_after", "extra_rounds", "extra_generations"):
        assert all(f"dynamic_sampling/{key}" in m for m in steps), key
    assert all(m["dynamic_sampling/zero_std_frac_after"] == 0 for m in steps)
    assert any(m["dynamic_sampling/zero_std_frac_before"] > 0 for m in steps)  # there was something to drop
    assert sum(m["dynamic_sampling/extra_generations"] for m in steps) > 0


def test_fresh_prompts_are_drawn_alike_on_every_rank_and_split_by_rank():
    """With several processes each rank generates its share of the same draw, in rank order, so the gathered batch
    is whole groups in TRL's order; the draw is rounded up so the rows split evenly."""
    shares = []
    for rank in (0, 1, 2):
        trainer = FakeDS([], max_rounds=1)
        trainer.accelerator = SimpleNamespace(num_processes=3, process_index=rank)
        n = trainer._ds_draw_size(2)  # 2 prompts x G=2 rows = 4 rows: not divisible by 3, so 3 prompts (6 rows)
        shares.append(trainer._ds_fresh_inputs(n, round_index=1))
    assert [len(s) for s in shares] == [2, 2, 2]
    rows = [row["prompt"] for share in shares for row in share]
    assert rows[0::2] == rows[1::2]  # consecutive pairs are one prompt's num_generations rows


def test_rloo_with_a_kl_penalty_refuses_dynamic_sampling(make_preset):
    from rlr.checks import load_experiment
    from rlr.errors import ConfigError

    ds = {"dynamic_sampling": {"enabled": True}}
    with pytest.raises(ConfigError, match=r"rl.dynamic_sampling.enabled: with rloo and rl.trainer.beta=0.03"):
        load_experiment(make_preset(rl={"algorithm": "rloo", **ds}), [], stages=("rl",))
    load_experiment(make_preset(rl={"algorithm": "rloo", "trainer": {"beta": 0.0}, **ds}), [], stages=("rl",))


def test_rloo_batches_without_num_items_merge():
    """RLOOTrainer returns per-sequence `old_logps` and no `num_items_in_batch`: merged as rows, none invented."""
    a, b = make_batch([(1, -1)]), make_batch([(2, -2)])
    for batch in (a, b):
        batch["old_logps"] = batch["advantages"] * 10.0
        del batch["num_items_in_batch"]
    out = concat_batches([a, b], pad_token_id=PAD)
    assert out["old_logps"].tolist() == [10, -10, 20, -20] and "num_items_in_batch" not in out


def test_whitening_gives_the_reinforce_pp_baseline_advantage():
    """TRL's batch scaling divides r - mean_group by the std of the raw rewards; whitening turns it into
    REINFORCE++-baseline's (r - mean_group) / std(r - mean_group), whatever TRL's constant was."""
    from rlr.train.advantages import WhitenedAdvantagesMixin, whiten

    r = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.5, 0.5, 0.5, 0.5])  # 3 groups of 4
    centred = r - r.reshape(3, 4).mean(dim=1).repeat_interleave(4)
    trl_batch = centred / (r.std() + 1e-4)  # what TRL's scale_rewards="batch" hands over
    paper = centred / centred.std(unbiased=False)
    assert torch.allclose(whiten(trl_batch, trl_batch), paper, atol=1e-5)
    assert torch.equal(whiten(torch.zeros(4), torch.zeros(4)), torch.zeros(4))  # no spread: left alone

    class Fake:
        model = SimpleNamespace(training=True)
        accelerator = SimpleNamespace(num_processes=1)

        def _generate_and_score_completions(self, inputs):
            return {"advantages": trl_batch.clone()}

    out = type("W", (WhitenedAdvantagesMixin, Fake), {})()._generate_and_score_completions([])
    assert torch.allclose(out["advantages"], paper, atol=1e-5)
