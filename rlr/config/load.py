"""Loading an experiment: YAML files, `extends:` composition, `key=value` overrides, algorithm bundles.

All of it happens here, in one place, and produces one typed `Config` plus the provenance of every key so that
errors can name the file a bad key came from.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rlr.config.coerce import Problems, build_dataclass, check_rules, suggest
from rlr.config.schema import Config
from rlr.config.yaml_values import load_yaml
from rlr.errors import ConfigError, UserError
from rlr.presets import presets_dir, resolve_preset

COMMAND_LINE = "command line"


@dataclass
class LoadedConfig:
    cfg: Config
    path: Path
    raw: dict[str, Any]
    origins: dict[str, str] = field(default_factory=dict)
    bundle: dict[str, Any] = field(default_factory=dict)  # the rl section the algorithm bundle contributed
    # top-level sections the preset's files and overrides set: the schema fills in every section (and the bundle an
    # rl one), so this is the only way to tell a stage the preset configures from one it merely defaults
    sections: frozenset[str] = frozenset()

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = load_yaml(path.read_text())
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not UTF-8 text (byte {e.start} is 0x{e.object[e.start]:02x}); a preset is a "
                        "UTF-8 YAML file") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"invalid YAML in {path}{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: the top level must be a mapping of sections (run:, model:, ...)")
    return data


def _record_origins(data: Any, prefix: str, origin: str, origins: dict[str, str]) -> None:
    if isinstance(data, dict):
        for k, v in data.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            origins[key] = origin
            _record_origins(v, key, origin, origins)


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; everything else (lists included) is replaced by `top`."""
    out = copy.deepcopy(base)
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _load_with_extends(path: Path, origins: dict[str, str], chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path))
        raise UserError(f"extends cycle: {cycle}; remove one of the extends entries")
    data = read_yaml(path)
    parents = data.pop("extends", None) or []
    if isinstance(parents, str):
        parents = [parents]
    merged: dict[str, Any] = {}
    for ref in parents:
        parent = resolve_preset(str(ref), relative_to=path.parent)
        merged = deep_merge(merged, _load_with_extends(parent, origins, (*chain, path)))
    _record_origins(data, "", _display(path), origins)
    return deep_merge(merged, data)


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise UserError(f"override '{text}' is not key=value; write e.g. rl.trainer.learning_rate=2e-6")
    key, _, value = text.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise UserError(f"override '{text}' has an empty key; write e.g. run.seed=1")
    try:
        parsed = load_yaml(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value  # not YAML: keep the raw string, the field type decides
    return key.split("."), parsed


def apply_override(data: dict[str, Any], parts: list[str], value: Any) -> None:
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = node[_index(parts, i, node)]
            continue
        if not isinstance(node.get(part), (dict, list)):
            node[part] = {}
        node = node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[_index(parts, len(parts) - 1, node)] = value
    else:
        node[last] = value


def _index(parts: list[str], i: int, node: list) -> int:
    if not parts[i].isdigit() or int(parts[i]) >= len(node):
        raise UserError(f"override {'.'.join(parts)}: '{parts[i]}' is not an index of a {len(node)}-item list")
    return int(parts[i])


def algorithm_names() -> list[str]:
    return sorted(p.stem for p in (presets_dir() / "algorithms").glob("*.yaml"))


def load_bundle(name: str) -> dict[str, Any]:
    path = presets_dir() / "algorithms" / f"{name}.yaml"
    if not path.is_file() and name.lower() == "ppo":
        raise UserError("rl.algorithm: ppo (with a learned critic) is not in TRL 1.16, so rlr has no bundle for it; "
                        "the critic-free family is: grpo, dr_grpo, dapo, gspo, rloo, reinforce_pp")
    if not path.is_file() and not algorithm_names():  # RLR_PRESETS at a library of one's own presets only
        where = f"RLR_PRESETS={presets_dir()}" if os.environ.get("RLR_PRESETS") else str(presets_dir())
        raise UserError(f"rl.algorithm: {name} is a bundle of the preset library, and {where} has no algorithms/; "
                        "copy rlr's presets/algorithms/ (and benchmarks/) into it, or unset RLR_PRESETS and refer to "
                        "your presets by path")
    if not path.is_file():
        raise UserError(
            f"rl.algorithm: unknown algorithm '{name}'{suggest(name, algorithm_names())} "
            f"(available: {', '.join(algorithm_names())})"
        )
    bundle = read_yaml(path)
    return bundle.get("rl", {})


def _drop_other_bundles(raw: dict[str, Any], origins: dict[str, str], algorithm: str) -> None:
    """Forget the rl keys a preset got by `extends:`-ing another algorithm's bundle file.

    `extends: [../algorithms/dapo.yaml]` then `rl.algorithm=grpo` must train GRPO: DAPO's loss_type, clip range and
    dynamic sampling would otherwise sit above the GRPO bundle as if the user had set them. Keys the user's own files
    or overrides set are kept (their origin is that file or the command line, not the bundle).
    """
    bundles = (presets_dir() / "algorithms").resolve()
    for key, origin in list(origins.items()):
        source = Path(origin)
        if not key.startswith("rl.") or source.suffix != ".yaml" or source.stem == algorithm:
            continue
        if source.resolve().parent != bundles:
            continue
        node: Any = raw
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf in node and not isinstance(node[leaf], dict):
            del node[leaf]
            del origins[key]


# A check beyond the schema that a stage owns (rlr.checks): it appends to `problems`, it does not raise.
Check = Callable[[LoadedConfig, Problems], None]


def load_config(preset: str | Path, overrides: list[str] | None = None, checks: Sequence[Check] = ()) -> LoadedConfig:
    """Resolve a preset into a typed Config; raises ConfigError listing every problem found.

    `checks` are the stages' own checks (data sources, rewards, TRL trainer sections; see `rlr.checks`), run on
    the built config so that their problems and the schema's are reported together. This package imports no
    stage: `rlr.checks.load_experiment` is the loader that knows which checks a stage needs.
    """
    path = resolve_preset(str(preset))
    origins: dict[str, str] = {}
    raw = _load_with_extends(path, origins)
    for text in overrides or []:
        parts, value = parse_override(text)
        apply_override(raw, parts, value)
        origins[".".join(parts)] = COMMAND_LINE

    sections = frozenset(raw)
    # The algorithm bundle sits under the user's own rl section: rl.trainer keys the user set win.
    bundle: dict[str, Any] = {}
    rl = raw.get("rl") if isinstance(raw.get("rl"), dict) else {}
    algorithm = rl.get("algorithm", "grpo")
    if isinstance(algorithm, str):
        _drop_other_bundles(raw, origins, algorithm)
        bundle = load_bundle(algorithm)
        bundle_origin = f"presets/algorithms/{algorithm}.yaml"
        bundle_origins: dict[str, str] = {}
        _record_origins({"rl": bundle}, "", bundle_origin, bundle_origins)
        origins = {**bundle_origins, **origins}
        raw = deep_merge({"rl": bundle}, raw) if bundle else raw

    problems = Problems(origins)
    cfg = build_dataclass(Config, raw, "", problems)
    check_rules(cfg, "", problems)  # each section's cross-field rules (run.name, eval.k <= eval.samples, ...)
    loaded = LoadedConfig(cfg=cfg, path=path, raw=raw, origins=origins, bundle=bundle, sections=sections)
    for check in checks:
        check(loaded, problems)
    if problems.items:
        raise ConfigError(problems.items)
    return loaded
