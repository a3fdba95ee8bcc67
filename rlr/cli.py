"""The `rlr` command line: thin Typer commands that load a preset and hand it to a stage module.

Heavy libraries (torch, transformers, trl, peft, datasets) are imported inside the commands, so `rlr --help`
and every `rlr <command> --help` stay fast. Exit codes: 0 ok, 1 run failed or a gate was missed, 2 bad input,
130 interrupted.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

# Typer's rich-formatted help imports rich.markdown & co. and costs ~0.1 s per `--help`; plain Click help says
# the same. Set TYPER_USE_RICH=1 to get the boxes back. (Read by typer at import time, hence before the import.)
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer  # noqa: E402

from rlr import __version__

app = typer.Typer(
    name="rlr",
    help="Reinforcement learning for reasoning LMs: prepare-data -> sft -> train-rl -> evaluate -> export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
presets_app = typer.Typer(help="The shipped preset library.", no_args_is_help=True)
rewards_app = typer.Typer(help="Reward functions: list them, check them on real completions.", no_args_is_help=True)
app.add_typer(presets_app, name="presets")
app.add_typer(rewards_app, name="rewards")

Preset = Annotated[str, typer.Argument(help="Experiment YAML: a path or a shipped preset name (rlr presets list).")]
Overrides = Annotated[
    list[str] | None, typer.Argument(help="Dotted key=value overrides, e.g. rl.trainer.learning_rate=2e-6.")
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the resolved config and TRL config, then exit.")]
Json = Annotated[bool, typer.Option("--json", help="Print one machine-readable JSON summary to stdout.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace a stage directory that already exists.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue an interrupted stage from its last checkpoint.")]
# Declared so each command accepts it; main() reads it from sys.argv, since errors are handled outside the command.
Debug = Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors.")]
NumProcesses = Annotated[int, typer.Option(help="Launch under accelerate with N processes.")]
AccelerateConfig = Annotated[str | None, typer.Option(help="ddp, zero2, zero3, fsdp or a path.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rlr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """rlr: one YAML preset, one command per stage."""


def _print_json(payload: Any) -> None:
    from rlr.console import print_json

    print_json(payload)


def _emit(summary: dict[str, Any], as_json: bool, title: str) -> None:
    from rlr.runs import is_main_process

    if not is_main_process():
        return  # under accelerate every rank returns a summary; one is printed
    if as_json:
        _print_json(summary)
        return
    from rlr.console import print_summary

    print_summary(summary, title)


def _stage(command: str, preset: str, overrides: list[str] | None, dry_run: bool, as_json: bool,
           overwrite: bool, resume: bool, **extra: Any) -> None:
    from rlr.checks import load_experiment
    from rlr.launch import shut_down_process_group
    from rlr.stage import COMMAND_CHECKS, STAGE_TRAINERS, stage_function, stage_options

    loaded = load_experiment(preset, overrides or [], stages=COMMAND_CHECKS[command])
    if dry_run:
        from rlr.checks import validate_experiment
        from rlr.validation_report import print_validation

        report = validate_experiment(loaded, STAGE_TRAINERS.get(command, ()))
        print_validation(loaded, report, as_json)
        return
    run = stage_function(command)
    summary = run(loaded, stage_options(command, overwrite=overwrite, resume=resume, json=as_json, **extra))
    shut_down_process_group()
    _emit(summary, as_json, f"rlr {command}")


@app.command("prepare-data")
def prepare_data(preset: Preset, overrides: Overrides = None, dry_run: DryRun = False, json_out: Json = False,
                 overwrite: Overwrite = False, resume: Resume = False, debug: Debug = False) -> None:
    """Build runs/<name>/data/: train and eval rows in one schema, with a manifest."""
    _stage("prepare-data", preset, overrides, dry_run, json_out, overwrite, resume)


@app.command()
def sft(preset: Preset, overrides: Overrides = None, dry_run: DryRun = False, json_out: Json = False,
        overwrite: Overwrite = False, resume: Resume = False, debug: Debug = False,
        num_processes: NumProcesses = 1, accelerate_config: AccelerateConfig = None) -> None:
    """Supervised fine-tuning (cold start / distillation) -> runs/<name>/sft/."""
    _maybe_launch("sft", preset, overrides, num_processes, accelerate_config)
    _stage("sft", preset, overrides, dry_run, json_out, overwrite, resume)


@app.command("train-rl")
def train_rl(preset: Preset, overrides: Overrides = None, dry_run: DryRun = False, json_out: Json = False,
             overwrite: Overwrite = False, resume: Resume = False, debug: Debug = False,
             num_processes: NumProcesses = 1, accelerate_config: AccelerateConfig = None) -> None:
    """RL with verifiable rewards (GRPO family, RLOO, REINFORCE++) -> runs/<name>/rl/."""
    _maybe_launch("train-rl", preset, overrides, num_processes, accelerate_config)
    _stage("train-rl", preset, overrides, dry_run, json_out, overwrite, resume)


@app.command()
def evaluate(preset: Preset, overrides: Overrides = None, dry_run: DryRun = False, json_out: Json = False,
             overwrite: Overwrite = False, resume: Resume = False, debug: Debug = False,
             model: Annotated[list[str] | None, typer.Option(
                 "--model", help="base, sft, rl, export, or a model/adapter path; repeat to compare.")] = None,
             limit: Annotated[int | None, typer.Option(help="Only the first N problems per benchmark.")] = None,
             min_: Annotated[list[str] | None, typer.Option(
                 "--min", help="Gate: benchmark.metric=value (repeatable); exit 1 when missed.")] = None,
             completions: Annotated[Path | None, typer.Option(
                 help="Score this JSONL (id or question, completion per line) instead of generating.")] = None,
             ) -> None:
    """pass@k, maj@k, avg@n on benchmarks -> runs/<name>/eval/."""
    if completions is not None and (model or resume):  # a file is scored as it is: no model, nothing to resume
        from rlr.errors import UserError

        if model:
            raise UserError(f"--model {model[0]} with --completions: scoring a completions file uses no model; drop "
                            "--model, or drop --completions to generate with that model")
        raise UserError("--resume with --completions: scoring a completions file has nothing to resume (an "
                        "unfinished scoring is redone); drop --resume")
    _stage("evaluate", preset, overrides, dry_run, json_out, overwrite, resume,
           models=model or [], limit=limit, mins=min_ or [], completions=completions)


@app.command()
def export(preset: Preset, overrides: Overrides = None, dry_run: DryRun = False, json_out: Json = False,
           overwrite: Overwrite = False, resume: Resume = False, debug: Debug = False,
           from_: Annotated[str | None, typer.Option("--from", help="sft, rl or a model/adapter path.")] = None,
           out: Annotated[Path | None, typer.Option(help="Write here instead of runs/<name>/export/.")] = None,
           push_to_hub: Annotated[str | None, typer.Option(help="Also push to this hub repo id.")] = None,
           ) -> None:
    """Merge LoRA and write a standalone HF model with a model card -> runs/<name>/export/."""
    _stage("export", preset, overrides, dry_run, json_out, overwrite, resume,
           from_stage=from_, out=out, push_to_hub=push_to_hub)


@app.command()
def validate(preset: Preset, overrides: Overrides = None, json_out: Json = False, debug: Debug = False) -> None:
    """Check a preset; print the resolved config, the TRL configs and the device/precision it will use."""
    from rlr.checks import check_configured_stages, validate_configured
    from rlr.config.load import load_config
    from rlr.validation_report import print_validation

    loaded = load_config(preset, overrides or [], checks=[check_configured_stages])  # an SFT-only preset: no rl
    report = validate_configured(loaded)
    from rlr.estimate.stage import estimate_section

    report["estimate"] = estimate_section(loaded)  # never fails validation: a missing size becomes a note
    print_validation(loaded, report, json_out)


@app.command()
def estimate(preset: Preset, overrides: Overrides = None, json_out: Json = False, debug: Debug = False,
             memory: Annotated[str | None, typer.Option(help="Device memory to fit, e.g. 24GB (GB = GiB); "
                                                             "default: estimate.memory, the GPU's, the RAM.")] = None,
             device: Annotated[str, typer.Option(help="auto (this machine; a GPU preset on a CPU machine: cuda), "
                                                      "cuda or cpu.")] = "auto",
             tflops: Annotated[float | None, typer.Option(help="Achieved TFLOP/s (default: measured or a table).")]
             = None,
             bandwidth_gbs: Annotated[float | None, typer.Option(help="Achieved memory bandwidth, GB/s.")] = None,
             ) -> None:
    """Peak memory per stage (weights, optimizer, activations, logits, KV cache ...), time per step, and whether
    it fits."""
    from rlr.config.load import load_config
    from rlr.estimate.stage import run_estimate

    loaded = load_config(preset, overrides or [])
    summary = run_estimate(loaded, memory=memory, device=device, tflops=tflops, bandwidth_gbs=bandwidth_gbs)
    if json_out:
        _print_json(summary)
        return
    from rlr.estimate.show import print_estimate

    print_estimate(summary)


@app.command()
def pipeline(preset: Preset, overrides: Overrides = None, json_out: Json = False, overwrite: Overwrite = False,
             debug: Debug = False) -> None:
    """prepare-data -> sft -> evaluate -> train-rl -> evaluate -> export, skipping completed stages."""
    from rlr.checks import check_pipeline_steps
    from rlr.config.load import load_config
    from rlr.pipeline import run_pipeline

    loaded = load_config(preset, overrides or [], checks=[check_pipeline_steps])  # the steps it runs, not all
    summary = run_pipeline(loaded, overwrite=overwrite, as_json=json_out)
    if json_out:
        _print_json(summary)


@app.command()
def quickstart(overrides: Overrides = None, json_out: Json = False, overwrite: Overwrite = False,
               debug: Debug = False) -> None:
    """The offline demo: tiny model, arithmetic, SFT then GRPO on CPU in minutes (rlr pipeline quickstart)."""
    from rlr.config.load import load_config
    from rlr.pipeline import ensure_tiny_model

    ensure_tiny_model(load_config("quickstart", overrides or []).cfg)
    pipeline("quickstart", overrides, json_out, overwrite, debug)


@app.command()
def report(run_dirs: Annotated[list[Path], typer.Argument(help="One or more runs/<name> directories.")],
           out: Annotated[Path | None, typer.Option(help="Output directory (default: <first run>/report).")] = None,
           debug: Debug = False) -> None:
    """Plots (PNG) and a markdown summary of one run or several overlaid."""
    from rlr.disk import check_writable
    from rlr.report.stage import write_report

    if out is not None:
        check_writable(out, key="--out")
    path = write_report(run_dirs, out)
    typer.echo(str(path))


@app.command("tiny-model")
def tiny_model(out_dir: Annotated[Path, typer.Argument(help="Directory to write the model and tokenizer to.")],
               size: Annotated[str, typer.Option(
                   help="tiny (~1M params, quickstart), micro (tests), 20m or 100m (benchmarks).")] = "tiny",
               seed: int = 0, overwrite: Overwrite = False, debug: Debug = False,
               max_positions: Annotated[int, typer.Option(help="Context length (tokens); tool-use runs need "
                                                          "~1024. The weights do not depend on it.")] = 256) -> None:
    """Build the offline tiny model + tokenizer (no hub needed)."""
    from rlr.errors import UserError

    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} is a file; give a directory to write the model into")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        if (out_dir / "config.json").is_file():
            typer.echo(f"{out_dir} already holds a model; keeping it (pass --overwrite to rebuild)", err=True)
            return
        raise UserError(f"{out_dir} exists and is not empty; choose another directory or pass --overwrite")
    from rlr.disk import check_writable
    from rlr.models.tiny import build_tiny_model, count_parameters

    check_writable(out_dir, key="tiny-model DIR")
    path = build_tiny_model(out_dir, size=size, seed=seed, max_positions=max_positions)
    typer.echo(f"wrote {path} ({count_parameters(path):,} parameters)", err=True)


@presets_app.command("list")
def presets_list() -> None:
    """List the shipped presets with their one-line descriptions."""
    from rlr.presets import list_presets, preset_summary, presets_dir

    for name in list_presets():
        typer.echo(f"{name:40s} {preset_summary(presets_dir() / f'{name}.yaml')}")


@presets_app.command("show")
def presets_show(name: Annotated[str, typer.Argument(help="Preset name, e.g. quickstart.")]) -> None:
    """Print a shipped preset."""
    from rlr.presets import resolve_preset

    typer.echo(resolve_preset(name).read_text())


@rewards_app.command("list")
def rewards_list() -> None:
    """List the built-in rewards."""
    from rlr.rewards.registry import REWARDS

    for name, fn in sorted(REWARDS.items()):
        doc = (fn.__doc__ or "").strip().splitlines()
        typer.echo(f"{name:18s} {doc[0] if doc else ''}")


@rewards_app.command("check")
def rewards_check(preset: Preset, overrides: Overrides = None,
                  completions: Annotated[Path | None, typer.Option(help="JSONL of completions to score.")] = None,
                  samples: Annotated[int, typer.Option(help="Completions to sample per prompt.")] = 4,
                  prompts: Annotated[int | None, typer.Option(
                      help="Train rows to check (default 4; with --gold all).")] = None,
                  gold: Annotated[bool, typer.Option(
                      "--gold", help="Audit the correctness rewards on the data's own references: each row's must "
                      "score 1, another row's 0. Exit 1 past --max-error-rate.")] = False,
                  max_error_rate: Annotated[float, typer.Option(
                      help="--gold: largest false-negative / false-positive rate that passes.")] = 0.02,
                  json_out: Json = False, debug: Debug = False) -> None:
    """The reward doctor: score real completions with every reward and warn about silent failures."""
    from rlr.config.load import load_config
    from rlr.rewards.doctor_stage import run_gold_check, run_reward_doctor
    from rlr.train.rl_config import check_reward_specs

    # the rewards' args are checked as validate and evaluate check them: exit 2 naming rewards[i].args.<key>
    loaded = load_config(preset, overrides or [], checks=[check_reward_specs])
    if gold and completions is not None:
        from rlr.errors import UserError

        raise UserError("--gold scores the data's own references; drop --completions (or --gold)")
    if gold:
        summary = run_gold_check(loaded, prompts=prompts, max_error_rate=max_error_rate, as_json=json_out)
    else:
        summary = run_reward_doctor(loaded, completions_file=completions, samples=samples,
                                    prompts=4 if prompts is None else prompts, as_json=json_out)
    if json_out:
        _print_json(summary)


def _maybe_launch(command: str, preset: str, overrides: list[str] | None, num_processes: int,
                  accelerate_config: str | None) -> None:
    """Re-run this very command under `accelerate launch` when more than one process is asked for."""
    import os

    if (num_processes <= 1 and not accelerate_config) or os.environ.get("RLR_LAUNCHED"):
        return
    from rlr.launch import launch_under_accelerate

    code = launch_under_accelerate(command, preset, overrides or [], sys.argv[1:], num_processes, accelerate_config)
    raise typer.Exit(code)


def entry() -> None:
    """The `rlr` executable (`python -m rlr` too): `main`, with an exit status that a Ctrl-C cannot turn into -2."""
    try:
        main()
    except SystemExit as e:
        if e.code == 130:
            from rlr.interrupts import exit_interrupted

            exit_interrupted()
        raise


def main() -> None:
    from rlr.errors import GateFailed, RunStopped, UserError

    debug = "--debug" in sys.argv
    if "--json" in sys.argv:
        from rlr.console import protect_json_stdout

        protect_json_stdout()

    # rlr draws one rich progress view per stage; the libraries' own tqdm bars (map, tokenize, load, save) would
    # bury it. Set before those libraries are imported, which happens inside the commands.
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if not debug:
        import warnings

        # transformers/TRL deprecation chatter is for library authors, not for someone running a preset
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="(transformers|trl|peft|torch)")
    from rlr.interrupts import remembered_interrupts

    try:
        with remembered_interrupts():  # a Ctrl-C swallowed by a library's __del__ still stops the command
            code = app(prog_name="rlr", standalone_mode=False)  # returns Exit codes instead of calling sys.exit
        if isinstance(code, int) and code:
            sys.exit(code)
    except UserError as e:
        _fail(f"error: {e}", e.exit_code, debug)
    except GateFailed as e:
        if e.summary is not None and "--json" in sys.argv:
            _print_json(e.summary)
        typer.echo(f"gate failed: {e}", err=True)
        sys.exit(1)
    except RunStopped as e:
        typer.echo(f"stopped: {e}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as e:  # command-line usage errors come through here too
        if isinstance(e, _click_exceptions("Exit")):
            sys.exit(e.exit_code)
        if isinstance(e, _click_exceptions("ClickException")):  # usage: unknown option, missing argument, ...
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, _click_exceptions("Abort")):
            typer.echo("interrupted", err=True)
            sys.exit(130)
        from rlr.disk import write_failure

        if disk := write_failure(e):  # a full or read-only disk, in whichever library's words it surfaced
            _fail(f"error: {disk}", 1, debug)
        _fail(f"error: the run failed: {type(e).__name__}: {e} (rerun with --debug for the traceback)", 1, debug)


def _click_exceptions(name: str) -> tuple[type, ...]:
    from rlr.trl_internals import click_exception_classes  # typer's vendored click: see that module

    return click_exception_classes(name)


def _fail(message: str, code: int, debug: bool) -> None:
    """One line and the exit code; `--debug` adds the traceback but keeps the code a script would see."""
    if debug:
        import traceback

        traceback.print_exc()
        if message.startswith("error: the run failed"):
            message = message.split(" (rerun with --debug")[0]
    typer.echo(message, err=True)
    sys.exit(code)
