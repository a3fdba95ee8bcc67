"""What the sft stage checks before it starts, and the trl.SFTConfig it trains with (built here, and nowhere else)."""

from __future__ import annotations

from typing import Any

from rlr.config.coerce import Problems
from rlr.config.trainer import build_trainer_kwargs, check_trainer_section
from rlr.paths import stage_dir
from rlr.train.trainers import build_config, config_class


def check_stop_at(loaded: Any, problems: Problems) -> None:
    """sft.stop_at: a reachable value, positive counts, and held-out problems to measure on."""
    cfg = loaded.cfg
    spec = cfg.sft.stop_at
    if spec.value is None:
        return
    if not 0 < spec.value <= 1:
        problems.add("sft.stop_at.value", f"{spec.value} is not an accuracy; give a value in (0, 1], e.g. 0.4")
    for key in ("every", "problems", "samples"):
        if getattr(spec, key) < 1:
            problems.add(f"sft.stop_at.{key}", f"{getattr(spec, key)} must be a positive integer")
    if spec.start < 0:
        problems.add("sft.stop_at.start", f"{spec.start} must be >= 0")
    if not cfg.data.eval and not cfg.data.eval_holdout:
        problems.add("sft.stop_at", "measures on the run's eval split, and this preset has none; add data.eval "
                     "(or data.eval_holdout), or set sft.stop_at.value=null")


def trl_config_kwargs(loaded: Any, device: Any, problems: Problems) -> dict[str, Any]:
    """trl.SFTConfig's keyword arguments: rlr defaults < sft.trainer < what rlr owns (paths, seed, device)."""
    cfg = loaded.cfg
    cls = config_class("sft")
    values = check_trainer_section("sft.trainer", cfg.sft.trainer, cls, problems)
    return build_trainer_kwargs(
        stage="sft", trainer_values=values, cls=cls, output_dir=str(stage_dir(cfg, "sft")), seed=cfg.run.seed,
        run_name=f"{cfg.run.name}-sft", device_flags=device.trainer_flags(), on_cpu=device.use_cpu,
        extra={"completion_only_loss": cfg.sft.completion_only_loss},
    )


def check(loaded: Any, problems: Problems) -> None:
    from rlr.device import resolve_device

    check_stop_at(loaded, problems)
    trl_config_kwargs(loaded, resolve_device(loaded.cfg.model.dtype), problems)


def build_trl_config(loaded: Any, device: Any) -> Any:
    """The trl.SFTConfig the stage trains with (raises ConfigError on a bad section or a combination TRL rejects)."""
    return build_config("sft", "sft.trainer", loaded, device, trl_config_kwargs)
