"""Every place rlr relies on TRL (or typer) behaviour that is not a documented public API, in one module.

A TRL upgrade is the commonest way for a trainer wrapper to break quietly: a private method is renamed, its output
grows a key, a log key changes its name. So each such touchpoint is named here, with the versions it was tested on,
and `tests/test_trl_contract.py` runs the real TRL code once and asserts what this module assumes (the keys of the
generation hook's output for GRPO and RLOO, the log keys rlr reads, the tool loop's included, the SFT token counter,
the reference model's source, the response template). pyproject pins TRL to `TESTED_TRL`'s minor version;
`check_trl_version` warns at the start of a training stage, and in `rlr validate` / `--dry-run`, if another one is
installed anyway.

This module imports neither torch nor TRL at load time: the report, the training callbacks and the CLI read its key
names, and the version check reads TRL's installed metadata without importing it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from typing import Any

from rlr.errors import UserError

# The TRL releases the contract test passed on; pyproject.toml pins `trl>=1.16,<1.17` to match.
TESTED_TRL = ("1.16.0",)
TESTED_TRL_MINOR = "1.16"

# --- GRPOTrainer / RLOOTrainer: the one private method rlr extends (dynamic sampling, batch-whitened advantages) ---
# TRL calls it once per generation batch and shuffles/splits/buffers its output dict for the next optimiser steps.
GENERATION_HOOK = "_generate_and_score_completions"
# per-row 2-D tensors of its output, with the side they are padded on and the pad value ("pad": the pad token)
GENERATION_PADDED_KEYS: dict[str, tuple[str, Any]] = {
    "prompt_ids": ("left", "pad"), "prompt_mask": ("left", 0),
    "completion_ids": ("right", "pad"), "completion_mask": ("right", 0), "tool_mask": ("right", 1),
    "old_per_token_logps": ("right", 0.0), "ref_per_token_logps": ("right", 0.0),
    "sampling_per_token_logps": ("right", 0.0), "importance_sampling_ratio": ("right", 1.0),
}
GENERATION_ROW_KEYS = frozenset({"advantages", "old_logps"})  # per-row 1-D (old_logps: RLOOTrainer's)
GENERATION_RECOMPUTED_KEYS = frozenset({"num_items_in_batch"})  # batch scalars rebuilt after re-assembly
GENERATION_KNOWN_KEYS = frozenset(GENERATION_PADDED_KEYS) | GENERATION_ROW_KEYS | GENERATION_RECOMPUTED_KEYS


def check_generation_hook(trainer_cls: type, feature: str = "rl.dynamic_sampling") -> None:
    """Fail before any model is loaded when this TRL version no longer has the method rlr extends."""
    if not callable(getattr(trainer_cls, GENERATION_HOOK, None)):
        import trl

        raise UserError(f"{feature} needs trl.{trainer_cls.__name__}.{GENERATION_HOOK}, which trl {trl.__version__} "
                        f"does not have; disable {feature} or install trl=={TESTED_TRL_MINOR}.*")


# --- log keys TRL writes and rlr reads (progress bar, accuracy metric, report, doctor) ---
LOG_REWARD = "reward"  # the weighted sum of the reward functions, batch mean
LOG_REWARD_STD = "reward_std"
LOG_FRAC_REWARD_ZERO_STD = "frac_reward_zero_std"
LOG_CLIPPED_RATIO = "completions/clipped_ratio"
LOG_MEAN_LENGTH = "completions/mean_length"
LOG_MAX_LENGTH = "completions/max_length"
LOG_ENTROPY = "entropy"
LOG_KL = "kl"  # logged only when beta > 0
LOG_CLIP_RATIOS = ("clip_ratio/region_mean", "clip_ratio/low_mean", "clip_ratio/high_mean")  # GRPOTrainer's
LOG_SFT_TOKENS = "num_tokens"  # SFTTrainer's running token count (restarts at 0 on resume in 1.16)
LOG_SFT_TOKEN_ACCURACY = "mean_token_accuracy"
LOG_LOSS = "loss"  # transformers Trainer's own keys, which TRL keeps
LOG_GRAD_NORM = "grad_norm"
LOG_LEARNING_RATE = "learning_rate"
# GRPOTrainer's tool loop, logged only when it has tools (rl.tools or rl.environment): calls per completion, and
# failed calls (an exception or a guard's time limit, answered as `{"error": ...}`) per call, 0 without calls
LOG_TOOL_CALL_FREQUENCY = "tools/call_frequency"
LOG_TOOL_FAILURE_FREQUENCY = "tools/failure_frequency"
_REWARD_PREFIX, _REWARD_SUFFIX = "rewards/", "/mean"


def reward_mean_key(reward_name: str) -> str:
    """GRPOTrainer / RLOOTrainer log each reward function's batch mean under this key (the function's __name__)."""
    return f"{_REWARD_PREFIX}{reward_name}{_REWARD_SUFFIX}"


def reward_name_of(key: str) -> str | None:
    """The reward function's name in a `reward_mean_key`, None for any other key."""
    name = key.removeprefix(_REWARD_PREFIX).removesuffix(_REWARD_SUFFIX)
    return name if name and len(name) == len(key) - len(_REWARD_PREFIX + _REWARD_SUFFIX) else None


def sft_tokens_per_second(log_history: list[dict[str, Any]], start_step: int, train_time: float) -> float | None:
    """Tokens trained in this attempt per second from SFTTrainer's `num_tokens` log. That counter restarts at 0 on
    resume (TRL 1.16): the baseline is subtracted only when the counter evidently carried on from the checkpoint."""
    seen = [(e["step"], float(e[LOG_SFT_TOKENS])) for e in log_history if LOG_SFT_TOKENS in e]
    pre = [tokens for step, tokens in seen if step <= start_step]
    post = [tokens for step, tokens in seen if step > start_step]
    if not post or train_time <= 0:
        return None
    baseline = pre[-1] if pre and post[0] > pre[-1] else 0.0
    return round((post[-1] - baseline) / train_time, 1)


def point_reference_model_at(model: Any, weights_dir: str) -> None:
    """GRPOTrainer builds a full-parameter run's reference model (beta > 0) with
    `from_pretrained(model.config._name_or_path)`: point that at `weights_dir` (the merged SFT weights), or the
    reference would be the base without the SFT adapter.

    TRL's public route, passing a model path and `model_init_kwargs` as trl/scripts/grpo.py does, does not fit: TRL
    would then load the policy itself, bypassing rlr's loader (base + SFT adapters merged in memory, the device and
    dtype rlr resolved), and given a model instance TRL 1.16 takes no separate path for the reference (it reads
    this attribute through `get_config_model_id`). The contract test checks that TRL still builds the reference
    from this attribute.
    """
    model.config._name_or_path = weights_dir


# --- tokenizer.parse_response: GRPOTrainer decodes a conversational completion with it (instead of batch_decode)
# whenever the tokenizer has a `response_template`, and its tool loop reads tool calls through it ---
# TRL's Qwen response template (trl.chat_template_utils.qwen3_template) without its `reasoning_content` field, so a
# `<think>` block stays in the content that rlr's rewards score, as it does without tools. TRL's own
# `add_response_schema` does not fit: it recognises only the chat templates it ships (not rlr's tiny ChatML) and
# would split the `<think>` block off. The contract test checks this still equals TRL's template less that field.
QWEN_TOOL_RESPONSE_TEMPLATE: dict[str, Any] = {
    "defaults": {"role": "assistant"},
    "start_anchor": "<|im_start|>assistant\n",
    "fields": {
        "tool_calls": {"open": "<tool_call>", "close_pattern": r"</tool_call>\s*", "repeats": True, "content": "json",
                       "transform": {"type": "function", "function": "{content}"}},
        "content": {"close_pattern": r"<\|im_end\|>\s*", "content": "text"},
    },
}
RESPONSE_TEMPLATE_ATTR = "response_template"


def has_response_template(tokenizer: Any) -> bool:
    return getattr(tokenizer, RESPONSE_TEMPLATE_ATTR, None) is not None


def set_response_template(tokenizer: Any, template: dict[str, Any]) -> None:
    """What TRL's `add_response_schema` does for the templates it knows (transformers >= 5.13's new-style parser)."""
    setattr(tokenizer, RESPONSE_TEMPLATE_ATTR, template)


def installed_trl_version() -> str | None:
    """The installed TRL's version from its metadata: no import, so `rlr validate` stays light."""
    try:
        return importlib.metadata.version("trl")
    except importlib.metadata.PackageNotFoundError:
        return None


def check_trl_version() -> None:
    """Warn (one line on stderr) when the installed TRL is not the minor version the contract was tested on.

    Called at the start of the sft and rl stages (before the model is loaded) and by `rlr validate` / `--dry-run`
    for a training stage: a warning, not an error, since a newer TRL usually works and the contract test says
    where it does not."""
    version = installed_trl_version()
    if version is not None and not version.startswith(TESTED_TRL_MINOR + "."):
        print(f"warning: trl {version} is installed; rlr was tested with trl {', '.join(TESTED_TRL)} "
              f"(pip install 'trl=={TESTED_TRL_MINOR}.*'); results may differ", file=sys.stderr)


# --- typer: since 0.2x it raises its vendored `typer._click.exceptions.*`, not subclasses of click's ---
CLICK_EXCEPTION_MODULES = ("click.exceptions", "typer._click.exceptions")


def click_exception_classes(name: str) -> tuple[type, ...]:
    """The exception class `name` from click and from typer's vendored copy of it."""
    found = []
    for module in CLICK_EXCEPTION_MODULES:
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if isinstance(cls, type):
            found.append(cls)
    return tuple(found)
