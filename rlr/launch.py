"""Past one GPU: rlr re-runs the same command under `accelerate launch`, never a home-made distributed layer.

`rlr train-rl X.yaml --num-processes 8 --accelerate-config zero3` becomes
`accelerate launch --config_file presets/accelerate/zero3.yaml --num_processes 8 -m rlr train-rl X.yaml`.
Settings that depend on the world size are checked here, before any process starts. In the children, only rank 0
writes the run directory (rlr.runs.is_main_process); every rank resolves the same preset and overrides.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rlr.errors import UserError
from rlr.presets import presets_dir

LAUNCH_FLAGS = ("--num-processes", "--accelerate-config")


def accelerate_config_path(name: str) -> Path:
    p = Path(name)
    if p.is_file():
        return p.resolve()
    shipped = presets_dir() / "accelerate" / f"{name}.yaml"
    if shipped.is_file():
        return shipped
    available = sorted(q.stem for q in (presets_dir() / "accelerate").glob("*.yaml"))
    raise UserError(f"--accelerate-config: no file or shipped config '{name}'; shipped: {', '.join(available)}")


def shut_down_process_group() -> None:
    """End a finished stage's process group on every rank before the interpreter exits.

    Without it Gloo's worker threads outlive the interpreter and a rank dies in finalization with SIGABRT
    ("terminate called without an active exception"), failing a run that trained and saved correctly. The barrier
    keeps a rank that finished early from tearing down while rank 0 still writes the run dir. Only called after
    success: on an error the other ranks may be inside a collective, and destroying the group could hang them.
    """
    torch = sys.modules.get("torch")  # a stage that never imported torch has no process group
    if torch is None or not torch.distributed.is_available() or not torch.distributed.is_initialized():
        return
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


def strip_launch_flags(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in LAUNCH_FLAGS:
            skip = True
            continue
        if arg.startswith(tuple(f"{flag}=" for flag in LAUNCH_FLAGS)):
            continue
        out.append(arg)
    return out


def check_world_size(command: str, preset: str, overrides: list[str], num_processes: int) -> None:
    """GRPO/RLOO sample num_generations completions per prompt across all ranks: the global generation batch
    must split into whole groups. TRL checks this only inside each child, after the model loads."""
    if command != "train-rl":
        return
    from rlr.config.load import load_config

    cfg = load_config(preset, overrides).cfg
    t = cfg.rl.trainer
    per_device = int(t.get("per_device_train_batch_size", 8))
    steps = int(t.get("steps_per_generation")
                or cfg.rl.updates_per_generation * int(t.get("gradient_accumulation_steps") or 1))
    global_batch = int(t.get("generation_batch_size") or per_device * num_processes * steps)
    num_generations = int(t.get("num_generations", 8))
    if global_batch % num_generations:
        raise UserError(
            f"rl.trainer: with {num_processes} processes the global generation batch is {global_batch} "
            f"(per_device_train_batch_size {per_device} x {num_processes} x steps {steps}), not divisible by "
            f"num_generations {num_generations}; change per_device_train_batch_size or num_generations"
        )


def _picks_own_port(config_file: Path | None) -> bool:
    """A single-node launch lets accelerate pick a free port (`--main_process_port 0`) unless the config names one:
    the fixed default 29500 makes a second run on the same machine fail with "address already in use"."""
    if config_file is None:
        return True
    import yaml

    try:
        config = yaml.safe_load(config_file.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"--accelerate-config {config_file}: not readable YAML ({e}); fix the file or pick a "
                        "shipped config (ddp, zero2, zero3, fsdp)") from None
    return "main_process_port" not in config and int(config.get("num_machines") or 1) <= 1


def launch_command(argv: list[str], num_processes: int, accelerate_config: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(num_processes)]
    config_file = accelerate_config_path(accelerate_config) if accelerate_config else None
    if config_file is not None:
        cmd += ["--config_file", str(config_file)]
    else:
        # The torchrun-based launcher; on a CPU-only machine the trainer's use_cpu makes it gloo data parallel.
        cmd += ["--multi_gpu", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    if _picks_own_port(config_file):
        cmd += ["--main_process_port", "0"]
    return [*cmd, "-m", "rlr", *strip_launch_flags(argv)]


def launch_under_accelerate(command: str, preset: str, overrides: list[str], argv: list[str], num_processes: int,
                            accelerate_config: str | None) -> int:
    check_world_size(command, preset, overrides, num_processes)
    env = {**os.environ, "RLR_LAUNCHED": "1"}
    from rlr.console import real_stdout

    # Under --json this process moved fd 1 to stderr; the ranks print the summary, so they get the real stdout.
    return subprocess.call(launch_command(argv, num_processes, accelerate_config), env=env, stdout=real_stdout())
