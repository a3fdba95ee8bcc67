"""Pass-rate filter: keep the prompts the starting model solves sometimes, not never and not always.

GRPO's advantage is reward minus the group mean: a prompt whose k samples all score the same (all wrong or all
right) contributes zero gradient and only costs generation time. Estimating each prompt's pass rate once, before
training, and keeping those inside [min_pass, max_pass] is the offline form of DAPO's dynamic sampling (and the
difficulty filtering of Skywork-OR1 / Polaris).

Generation is plain HF `generate` with left padding (batched decoding needs it) and sampling seeded by the run
seed; scoring is the same `score_correctness` the RL reward and `rlr evaluate` use.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

PROMPTS_PER_BATCH = 16


def estimate_pass_rates(rows: list[dict[str, Any]], cfg: Any, tokenizer: Any, seed: int) -> list[float]:
    """Mean score of `cfg.data.difficulty.samples` sampled completions per row (partial credit averaged in)."""
    import torch
    from transformers.utils import logging as hf_logging

    from rlr.device import resolve_device
    from rlr.models.loading import load_base_model
    from rlr.rewards.correctness import score_correctness

    settings = cfg.data.difficulty
    k = settings.samples
    device = resolve_device(cfg.model.dtype)
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a "Loading weights" bar is noise here; restored for the stages after us
    try:
        model = load_base_model(cfg.model.name_or_path, cfg.model, device)
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
    model.to(device.device).eval()
    tokenizer.padding_side = "left"
    torch.manual_seed(seed)
    rates: list[float] = []
    for start in range(0, len(rows), PROMPTS_PER_BATCH):
        batch = rows[start : start + PROMPTS_PER_BATCH]
        texts = [_prompt_text(row["prompt"], tokenizer) for row in batch]
        plain = isinstance(batch[0]["prompt"], str)  # a chat template already wrote the special tokens
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=plain)
        enc = {name: t.to(device.device) for name, t in enc.items() if name in ("input_ids", "attention_mask")}
        with torch.no_grad():
            out = model.generate(**enc, do_sample=True, temperature=settings.temperature, num_return_sequences=k,
                                 max_new_tokens=settings.max_new_tokens, pad_token_id=tokenizer.pad_token_id)
        completions = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        answers = [row["answer"] for row in batch for _ in range(k)]
        tasks = [row["task"] for row in batch for _ in range(k)]
        metas = [row["meta"] for row in batch for _ in range(k)]
        scores = score_correctness(completions, answers, tasks, metas)
        rates += [sum(scores[i * k : (i + 1) * k]) / k for i in range(len(batch))]
        log.info("difficulty: %d/%d prompts scored", len(rates), len(rows))
    return rates


def _prompt_text(prompt: list[dict[str, str]] | str, tokenizer: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)


def filter_by_pass_rate(rows: list[dict[str, Any]], rates: list[float], min_pass: float, max_pass: float
                        ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(kept rows, one pass-rate record per input row for data/pass_rates.jsonl)."""
    kept: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    for row, rate in zip(rows, rates, strict=True):
        keep = min_pass <= rate <= max_pass
        records.append({"prompt": row["prompt"], "answer": row["answer"], "pass_rate": round(rate, 6), "kept": keep})
        if keep:
            kept.append(row)
    return kept, records
