"""DAPO dynamic sampling (Yu et al. 2025, arXiv:2503.14476, section 3.2) on top of TRL's own trainers.

A group whose completions all earn the same reward has zero advantage: it adds nothing to the policy gradient but
still dilutes the batch (and, with token-level losses, the normaliser). DAPO drops such groups and keeps sampling
fresh prompts until the batch is full. TRL has no such option, so rlr adds it here and nowhere else.

How: a mixin over GRPOTrainer / RLOOTrainer overrides one method, `_generate_and_score_completions(inputs)`, which
TRL calls once per generation batch (`per_device_train_batch_size * steps_per_generation` rows, each prompt
repeated `num_generations` times in consecutive rows) and whose output dict TRL then shuffles, splits and buffers
for the next `steps_per_generation` optimiser steps. The override calls `super()` again on fresh prompts drawn
from the train set, keeps the groups with a non-zero advantage, and re-assembles one output of the same number of
rows (re-padding the per-row tensors). No TRL code is copied; `check_hook` fails at startup with a clear message
if a TRL upgrade renames the method, and `concat_batches` refuses keys it does not know how to merge (the hook
and its keys: rlr/trl_internals.py).

Several processes: TRL computes advantages over the gathered generation batch (a group may straddle two ranks) and
hands each rank its slice in rank order. So each rank gathers every rank's rows, all ranks take the same decisions
on the same global batch (same groups kept, same number of rounds, so every collective inside TRL is matched), the
fresh prompts of an extra round are drawn identically everywhere and split by rank, and each rank returns its own
slice of the assembled batch.

Deviations from the paper: "zero variance" is read off the advantages TRL computed (all advantages of the group equal
within 1e-6), which is exactly "no policy-gradient signal" and covers the total reward, so a group that is all
wrong but differs in format or length shaping is kept (DAPO filters on accuracy alone); the search is
bounded by `max_rounds` extra generation rounds (DAPO samples without bound), after which the batch is filled with
the dropped zero-advantage groups rather than failing (logged as `dynamic_sampling/filled_groups`); and an extra
round draws only as many prompts as the keep rate seen so far says are needed (DAPO/verl draw whole batches).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from transformers import TrainerCallback

from rlr.errors import UserError
from rlr.trl_internals import (
    GENERATION_PADDED_KEYS,
    GENERATION_RECOMPUTED_KEYS,
    GENERATION_ROW_KEYS,
    check_generation_hook,
)

ADVANTAGE_ATOL = 1e-6
# what TRL's generation output holds, and how to merge it: rlr/trl_internals.py (the one place for TRL internals)
PADDED_KEYS = GENERATION_PADDED_KEYS
ROW_KEYS = GENERATION_ROW_KEYS
RECOMPUTED_KEYS = GENERATION_RECOMPUTED_KEYS
check_hook = check_generation_hook


def informative_groups(advantages: torch.Tensor, num_generations: int, atol: float = ADVANTAGE_ATOL) -> torch.Tensor:
    """Bool per group: do the completions of the group get different advantages?

    The spread, not the size: equal rewards give every member the same advantage, but not always zero. GRPO's
    group scaling divides r - mean by std + 1e-4, and float rounding in std turns a group of eight 0.1 rewards
    into eight advantages of ~7e-5, far above any sensible "zero"; their spread is exactly 0.
    """
    adv = advantages.reshape(advantages.shape[0] // num_generations, -1)  # (B,) or (B, T) -> (groups, rest)
    return (adv.amax(dim=1) - adv.amin(dim=1)) > atol


def group_rows(groups: torch.Tensor | Sequence[int], num_generations: int) -> torch.Tensor:
    """Row indices of the given group indices (groups occupy consecutive blocks of `num_generations` rows)."""
    groups = torch.as_tensor(groups, dtype=torch.long)
    return (groups[:, None] * num_generations + torch.arange(num_generations)[None, :]).reshape(-1)


def take_rows(batch: dict[str, Any], rows: torch.Tensor) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if key in RECOMPUTED_KEYS or value is None:
            out[key] = value
        elif isinstance(value, torch.Tensor) and value.ndim >= 1:
            out[key] = value[rows.to(value.device)]
        else:
            raise UserError(_unknown_key_message(key))
    return out


def _unknown_key_message(key: str) -> str:
    return (f"rl.dynamic_sampling cannot merge TRL's generation output '{key}' (multimodal inputs or a newer TRL); "
            "set rl.dynamic_sampling.enabled=false")


def _padding(key: str, pad_token_id: int) -> tuple[str, Any]:
    side, value = PADDED_KEYS[key]
    return side, pad_token_id if value == "pad" else value


def _pad_token_id(trainer: Any) -> int:
    # processing_class is a tokenizer, or a processor that wraps one
    return getattr(trainer.processing_class, "tokenizer", trainer.processing_class).pad_token_id


def _pad_to(t: torch.Tensor, width: int, side: str, value: Any) -> torch.Tensor:
    missing = width - t.shape[1]
    if missing <= 0:
        return t
    filler = torch.full((t.shape[0], missing, *t.shape[2:]), value, dtype=t.dtype, device=t.device)
    return torch.cat([filler, t] if side == "left" else [t, filler], dim=1)


def concat_batches(batches: Sequence[dict[str, Any]], pad_token_id: int) -> dict[str, Any]:
    """One generation batch from several: per-row tensors concatenated, 2-D ones re-padded to a common width."""
    keys = [k for k in batches[0] if batches[0][k] is not None]
    out: dict[str, Any] = {}
    for key in keys:
        if key in RECOMPUTED_KEYS:
            continue
        values = [b[key] for b in batches]
        if key in ROW_KEYS:
            out[key] = torch.cat(values, dim=0)
        elif key in PADDED_KEYS:
            side, pad = _padding(key, pad_token_id)
            width = max(v.shape[1] for v in values)
            out[key] = torch.cat([_pad_to(v, width, side, pad) for v in values], dim=0)
        else:
            raise UserError(_unknown_key_message(key))
    if batches[0].get("num_items_in_batch") is not None:
        mask = out["completion_mask"] * out["tool_mask"] if "tool_mask" in out else out["completion_mask"]
        out["num_items_in_batch"] = mask.sum()
    return out


class DynamicSamplingMixin:
    """Put before a TRL trainer class: `class T(DynamicSamplingMixin, GRPOTrainer)` (see `with_dynamic_sampling`)."""

    ds_max_rounds: int = 3

    def _ds_setup(self, max_rounds: int) -> None:
        if not hasattr(self.train_dataset, "__getitem__"):
            raise UserError("rl.dynamic_sampling draws fresh prompts by index; it needs a map-style train dataset")
        self.ds_max_rounds = max_rounds
        self.ds_pending: list[dict[str, float]] = []  # one entry per generation batch, read by DynamicSamplingLog
        self.ds_totals = {"generated_groups": 0, "kept_groups": 0}

    def _ds_fresh_inputs(self, n_prompts: int, round_index: int) -> list[dict[str, Any]]:
        """This rank's share of `n_prompts` fresh prompts x num_generations rows (the same draw on every rank)."""
        # Own generator, seeded by step and round: every rank draws the same prompts, resuming draws them again, and
        # the global RNG that TRL's samplers and shuffles use is left alone.
        # With steps_per_generation < gradient_accumulation_steps two generation batches share a global_step, so
        # the seed also counts generation batches within the step (restarting with it, so a resume still agrees).
        step = self.state.global_step
        if round_index == 1:
            in_step = getattr(self, "_ds_in_step", (None, -1))
            self._ds_in_step = (step, in_step[1] + 1 if in_step[0] == step else 0)
        seed = ((int(self.args.seed) * 1_000_003 + step) * 1009 + self._ds_in_step[1]) * 101 + round_index
        gen = torch.Generator().manual_seed(seed)
        idx = torch.randint(len(self.train_dataset), (n_prompts,), generator=gen).tolist()
        rows = [dict(self.train_dataset[i]) for i in idx]
        repeated = [row for row in rows for _ in range(self.num_generations)]
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        share = len(repeated) // world
        return repeated[rank * share:(rank + 1) * share]

    def _ds_draw_size(self, n_prompts: int) -> int:
        """Rounded up so the rows (n x num_generations) split evenly over the processes, as TRL's gathers need."""
        step = self.accelerator.num_processes // math.gcd(self.num_generations, self.accelerator.num_processes)
        return math.ceil(n_prompts / step) * step

    def _ds_gather(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Every rank's rows of one generation output, in rank order (TRL's own order for advantages)."""
        if self.accelerator.num_processes == 1:
            return batch
        out: dict[str, Any] = {}
        for key, value in batch.items():
            if key in RECOMPUTED_KEYS or value is None:
                out[key] = value
            elif key in ROW_KEYS:
                out[key] = self.accelerator.gather(value)
            elif key in PADDED_KEYS:
                side, pad = _padding(key, _pad_token_id(self))
                value = self.accelerator.pad_across_processes(value, dim=1, pad_index=pad, pad_first=side == "left")
                out[key] = self.accelerator.gather(value)
            else:
                raise UserError(_unknown_key_message(key))
        return out

    def _ds_local(self, batch: dict[str, Any], rows_per_rank: int) -> dict[str, Any]:
        """This rank's slice of the assembled global batch; num_items_in_batch stays global, as TRL's is."""
        if self.accelerator.num_processes == 1:
            return batch
        start = self.accelerator.process_index * rows_per_rank
        return take_rows(batch, torch.arange(start, start + rows_per_rank))  # copies num_items_in_batch as is

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        first = super()._generate_and_score_completions(inputs)
        if not self.model.training:
            return first
        g = self.num_generations
        target = len(inputs) * self.accelerator.num_processes // g  # groups in the global generation batch
        first = self._ds_gather(first)
        kept: list[dict[str, Any]] = []
        dropped: list[dict[str, Any]] = []
        n_kept = n_dropped = 0
        batch, rounds, generated = first, 0, target
        zero_before = 0.0
        while True:
            mask = informative_groups(batch["advantages"], g).cpu()
            if rounds == 0:
                zero_before = 1.0 - mask.float().mean().item()
            good = torch.nonzero(mask).flatten()[: target - n_kept]
            if len(good):
                kept.append(take_rows(batch, group_rows(good, g)))
                n_kept += len(good)
            bad = torch.nonzero(~mask).flatten()[: max(target - n_kept - n_dropped, 0)]
            if len(bad):  # only as many as could be needed to fill the batch: memory stays bounded
                dropped.append(take_rows(batch, group_rows(bad, g)))
                n_dropped += len(bad)
            if n_kept >= target or rounds >= self.ds_max_rounds:
                break
            rounds += 1
            # Draw what the keep rate so far says will fill the gap, not a whole batch: with 25% constant groups
            # a full-size round per missing group would cost ~2x generation instead of ~1.33x.
            n_draw = target if n_kept == 0 else min(target, math.ceil((target - n_kept) * generated / n_kept))
            n_draw = self._ds_draw_size(n_draw)
            generated += n_draw
            batch = self._ds_gather(super()._generate_and_score_completions(self._ds_fresh_inputs(n_draw, rounds)))
        filled = target - n_kept
        out = concat_batches(kept + _first_groups(dropped, filled, g), _pad_token_id(self))
        out = self._ds_local(out, len(inputs))
        self.ds_totals["generated_groups"] += generated
        self.ds_totals["kept_groups"] += n_kept
        self.ds_pending.append({
            "dynamic_sampling/zero_std_frac_before": zero_before,
            "dynamic_sampling/zero_std_frac_after": filled / target,
            "dynamic_sampling/extra_rounds": float(rounds),
            "dynamic_sampling/extra_generations": float((generated - target) * g),
            "dynamic_sampling/filled_groups": float(filled),
        })
        return out


def _first_groups(batches: list[dict[str, Any]], n_groups: int, g: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for b in batches:
        if n_groups <= 0:
            break
        have = b["advantages"].shape[0] // g
        take = min(have, n_groups)
        out.append(take_rows(b, torch.arange(take * g)))
        n_groups -= take
    return out


def with_dynamic_sampling(trainer_cls: type) -> type:
    """`trainer_cls` with dynamic sampling; call `trainer._ds_setup(max_rounds)` after construction."""
    check_hook(trainer_cls)
    return type(f"DynamicSampling{trainer_cls.__name__}", (DynamicSamplingMixin, trainer_cls), {})


def generated_per_kept_group(totals: dict[str, int]) -> float:
    """The cost of dynamic sampling: groups generated per informative group trained on (1.0 = free)."""
    kept = totals.get("kept_groups", 0)
    return math.inf if kept == 0 else totals.get("generated_groups", 0) / kept


class DynamicSamplingLog(TrainerCallback):
    """Adds the dynamic-sampling counters to each log record (means over the generation batches since the last
    log), through the public callback API: callbacks added before rlr's metrics writer see `logs` first."""

    def __init__(self, trainer: Any):
        self.trainer = trainer

    def on_log(self, args, state, control, logs=None, **kwargs):
        pending = getattr(self.trainer, "ds_pending", None)
        if logs is None or not pending:
            return
        for key in pending[0]:
            logs[key] = sum(p[key] for p in pending) / len(pending)
        pending.clear()
