"""Batch whitening of advantages: REINFORCE++-baseline's normalisation (Hu et al. 2025, arXiv:2501.03262).

REINFORCE++-baseline subtracts the group mean (the baseline), then normalises by the mean and std of those centred
rewards over the whole batch: A = (r - mean_group) / std_batch(r - mean_group). TRL's `scale_rewards: batch`
divides by the batch std of the raw rewards instead, which also holds the variance between prompts, so the step
size depends on how mixed the batch's difficulties are. Whitening TRL's advantages over the batch gives the paper's
formula exactly: TRL's A is a constant multiple of r - mean_group, and whitening removes any constant factor.

It also re-normalises a batch that dynamic sampling assembled from several generation rounds (each round scaled by
its own batch std). Same hook as dynamic sampling, applied after it; no TRL code copied.
"""

from __future__ import annotations

from typing import Any

import torch

from rlr.trl_internals import check_generation_hook

EPS = 1e-8


def whiten(advantages: torch.Tensor, all_advantages: torch.Tensor) -> torch.Tensor:
    """`advantages` minus the mean, over the std, of `all_advantages` (the whole batch, every rank's rows).
    A batch with no spread (every reward equal) is left as it is: there is nothing to scale."""
    mean, std = all_advantages.float().mean(), all_advantages.float().std(unbiased=False)
    if std < EPS:
        return advantages
    return ((advantages.float() - mean) / (std + EPS)).to(advantages.dtype)


class WhitenedAdvantagesMixin:
    """Put before a TRL trainer class (and before the dynamic-sampling mixin, so it sees the assembled batch)."""

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        out = super()._generate_and_score_completions(inputs)
        if not self.model.training:
            return out
        local = out["advantages"]
        everything = self.accelerator.gather(local) if self.accelerator.num_processes > 1 else local
        out["advantages"] = whiten(local, everything)
        return out


def with_whitened_advantages(trainer_cls: type) -> type:
    """`trainer_cls` whose generation output carries batch-whitened advantages."""
    check_generation_hook(trainer_cls, "rl.whiten_advantages")
    return type(f"Whitened{trainer_cls.__name__}", (WhitenedAdvantagesMixin, trainer_cls), {})
