"""`rlr train-rl PRESET`: RL with verifiable rewards on TRL's GRPOTrainer / RLOOTrainer -> runs/<name>/rl/.

Reads like a recipe: check the machine, find the starting model and the prepared data, build the rewards, the TRL
config and the trainer, train under rlr's hygiene (resume, Ctrl-C, NaN guard, metrics), save the model with its
lineage. Every algorithm is a bundle of TRL settings (presets/algorithms/); the only training logic rlr adds is
DAPO's dynamic sampling (rlr/train/dynamic_sampling.py).

Where it deviates from a plain TRL script: an SFT LoRA is merged into the base in memory and a *new* LoRA is trained
on top (TRL would otherwise keep training the SFT adapter, and with a KL term disabling it would give the wrong
reference); the saved model records base + SFT adapter + RL adapter, which is what evaluate and export load.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

from rlr.config.load import LoadedConfig
from rlr.errors import UserError
from rlr.models.references import ModelRef
from rlr.runs import StageRun
from rlr.stage import StageOptions
from rlr.train.trainers import trainer_class

VLLM_MESSAGE = ("rl.trainer.use_vllm: vLLM needs a CUDA GPU and pip install 'rlr[vllm]'; set rl.trainer.use_vllm="
                "false to generate with transformers")


def check_generation_backend(trainer: dict[str, Any], device_name: str) -> None:
    """Fail before anything is loaded when vLLM is asked for but cannot run here."""
    if trainer.get("use_vllm") and (device_name != "cuda" or importlib.util.find_spec("vllm") is None):
        raise UserError(VLLM_MESSAGE)


def init_choice(cfg: Any, resume: bool = False) -> str:
    """rl.init_from, defaulting to this run's SFT output when that stage is complete.

    A started but unfinished SFT (killed, interrupted, failed, unreadable manifest) is an error, not a silent start
    from the base model; a resumed RL run keeps the start it was begun with, whatever SFT did since.
    """
    if cfg.rl.init_from:
        return cfg.rl.init_from
    if resume:
        started = StageRun.of(cfg, "rl").manifest().get("inputs", {}).get("init_from")
        if started:
            return started
    sft = StageRun.of(cfg, "sft")
    if sft.is_complete():
        return "sft"
    if sft.path.is_dir() and any(sft.path.iterdir()):
        raise UserError(f"{sft.path} exists with status '{sft.status or 'unknown'}', so RL would start from the base "
                        "model instead of it; finish SFT first (rlr sft PRESET --resume) or set rl.init_from=base")
    return "base"


def _absolute(ref: str) -> str:
    path = Path(ref)
    return str(path.resolve()) if path.exists() else ref  # keep hub ids as they are


def reward_setup(loaded: LoadedConfig, max_completion_length: int) -> tuple[list[Any], list[float]]:
    """The preset's rewards, plus DAPO's soft overlong punishment when rl.overlong_buffer is set."""
    from rlr.rewards.registry import build_reward, build_reward_functions, with_length_defaults
    from rlr.train.rl_config import adds_overlong_reward, reward_weights

    cfg = loaded.cfg
    funcs, _ = build_reward_functions(with_length_defaults(cfg.rewards, max_completion_length), loaded.base_dir)
    buffer = cfg.rl.overlong_buffer
    if adds_overlong_reward(cfg):
        cache = round(buffer * max_completion_length) if buffer < 1 else int(buffer)
        cache = max(1, min(cache, max_completion_length))
        funcs.append(build_reward("overlong", {"max_completion_len": max_completion_length,
                                               "soft_punish_cache": cache}))
    import inspect

    from rlr.rewards.guard import GuardedReward

    timeouts = [spec.timeout_s for spec in cfg.rewards] + [None] * (len(funcs) - len(cfg.rewards))
    funcs = [f if inspect.iscoroutinefunction(f) else GuardedReward(f, timeout_s=120.0 if t is None else t)
             for f, t in zip(funcs, timeouts, strict=True)]  # TRL awaits async rewards itself
    return funcs, reward_weights(cfg)  # the one list the TRL config was built with (validate shows it)


def data_inputs(cfg: Any) -> dict[str, Any]:
    from rlr.data.prepared import verified_split

    train, sha = verified_split(cfg, "train")
    return {"dir": str(train.parent.resolve()), "train_sha256": sha}


def run_rl(loaded: LoadedConfig, opts: StageOptions) -> dict[str, Any]:
    from rlr.models.references import resolve_model_ref
    from rlr.train import training_stage as ts
    from rlr.train.rl_config import build_trl_config

    cfg = loaded.cfg
    start = ts.prepare(cfg, opts, "rl", cfg.rl.use_lora)
    check_generation_backend(cfg.rl.trainer, start.device.device)
    data = data_inputs(cfg)
    init = init_choice(cfg, opts.resume)
    init_ref = resolve_model_ref(init, cfg)
    args = build_trl_config(loaded, start.device)
    funcs, weights = reward_setup(loaded, args.max_completion_length)  # args.reward_weights already holds weights
    if cfg.rl.dynamic_sampling.enabled or cfg.rl.whiten_advantages:  # both extend TRL's generation hook
        from rlr.train.dynamic_sampling import check_hook

        check_hook(trainer_class(cfg.rl.trainer_type))

    from rlr.rewards.registry import CORRECTNESS_REWARDS_KEY, correctness_names_of

    inputs = {"data": data, "init_from": init, "init_model": init_ref.as_dict(), "algorithm": cfg.rl.algorithm,
              "trainer": cfg.rl.trainer_type,
              CORRECTNESS_REWARDS_KEY: correctness_names_of(funcs)}  # the report plots these as accuracy
    with ts.begin(start, cfg, opts, inputs) as run:
        trainer = build_trainer(loaded, init_ref, args, funcs, weights, start.device, run)
        t0 = time.time()
        result = train(trainer, run, opts.resume, cfg.rl.algorithm)
        train_s = time.time() - t0
        model_dir = ts.model_dir(cfg, "rl")
        ts.save_model(trainer, model_dir, lineage(cfg, init_ref, model_dir))
        summary = ts.summary(start, trainer, model_dir, result, train_s, cfg.rl.use_lora, **reward_curve(run))
        run.finish(outputs=summary)
    return summary


def train(trainer: Any, run: StageRun, resume: bool, algorithm: str) -> Any:
    """rlr's shared hygiene, plus the way RL diverges that SFT does not: the policy's sampling probabilities turn
    NaN/inf inside generate() (torch.multinomial raises) before any loss is logged for the NaN guard to see."""
    from rlr.train.loop import TrainingDiverged, last_checkpoint, train_with_hygiene

    try:
        return train_with_hygiene(trainer, run, resume=resume, description=f"train-rl {algorithm}")
    except RuntimeError as e:
        if "probability tensor contains" not in str(e):
            raise
        kept = last_checkpoint(run.path)
        raise TrainingDiverged(f"the policy's sampling probabilities became NaN/inf at step "
                               f"{trainer.state.global_step + 1}; the last checkpoint is "
                               f"{kept or 'none (no checkpoint was saved yet)'}; lower the learning rate and "
                               "--resume") from None


def build_trainer(loaded: LoadedConfig, init_ref: ModelRef, args: Any, funcs: list[Any], weights: list[float],
                  device: Any, run: StageRun) -> Any:
    from rlr.data.prepared import load_split_dataset
    from rlr.envs.rollout_tools import trainer_kwargs  # rl.tools / rl.environment; {} when the preset has neither
    from rlr.models.loading import load_tokenizer
    from rlr.train.rl_logging import AccuracyLog, BatchRecorder, SampleLog, record_rewards
    from rlr.train.training_stage import load_policy

    cfg = loaded.cfg
    tokenizer = load_tokenizer(init_ref.tokenizer_source(), cfg.model)
    model, peft_config = load_policy(init_ref, cfg, device, cfg.rl.use_lora)  # SFT adapters merged: a new LoRA
    if not cfg.rl.use_lora and init_ref.adapters and args.beta:
        from rlr.trl_internals import point_reference_model_at

        merged = run.path / "init_model"  # the reference is the SFT model, not the base under its adapter
        model.save_pretrained(merged)
        point_reference_model_at(model, str(merged.resolve()))

    cls = trainer_class(cfg.rl.trainer_type)
    ds = cfg.rl.dynamic_sampling
    if ds.enabled:
        from rlr.train.dynamic_sampling import with_dynamic_sampling

        cls = with_dynamic_sampling(cls)
    if cfg.rl.whiten_advantages:  # after dynamic sampling: it whitens the assembled batch
        from rlr.train.advantages import with_whitened_advantages

        cls = with_whitened_advantages(cls)
    recorder = BatchRecorder()
    trainer = cls(model=model, reward_funcs=record_rewards(funcs, recorder), args=args,
                  train_dataset=load_split_dataset(cfg, "train"), processing_class=tokenizer, peft_config=peft_config,
                  **trainer_kwargs(loaded, tokenizer))
    names = [getattr(f, "__name__", "") for f in funcs]
    if ds.enabled:
        from rlr.train.dynamic_sampling import DynamicSamplingLog

        trainer._ds_setup(ds.max_rounds)
        trainer.add_callback(DynamicSamplingLog(trainer))
    # added before train_with_hygiene's callbacks, so the metrics writer and progress bar see these keys
    trainer.add_callback(AccuracyLog(funcs))
    trainer.add_callback(SampleLog(run.path / "samples.jsonl", recorder, dict(zip(names, weights, strict=True)),
                                   cfg.rl.sample_log_every))
    from rlr.train.alarms import RunAlarms  # rl.alarms: warn about / stop a run that has stopped learning

    trainer.add_callback(RunAlarms(cfg.rl.alarms, funcs, args.beta, Path(args.output_dir), str(loaded.path)))
    return trainer


def lineage(cfg: Any, init_ref: ModelRef, model_dir: Path) -> ModelRef:
    """What rl/model/ loads as: base + earlier adapters + the RL adapter, or its own full weights."""
    here = str(model_dir)
    if cfg.rl.use_lora:
        return ModelRef(base=_absolute(init_ref.base), adapters=[*map(_absolute, init_ref.adapters), here], label="rl")
    return ModelRef(base=here, label="rl")


def reward_curve(run: StageRun) -> dict[str, Any]:
    """first/last reward: means over the first and last tenth of the logged steps (one step's mean is noisy)."""
    rewards = [m["reward"] for m in run.read_metrics() if isinstance(m.get("reward"), (int, float))]
    k = max(1, len(rewards) // 10)
    return {"first_reward": round(sum(rewards[:k]) / k, 4) if rewards else None,
            "last_reward": round(sum(rewards[-k:]) / k, 4) if rewards else None}
