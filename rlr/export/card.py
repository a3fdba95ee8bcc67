"""The model card (README.md) of an export, and the optional push to the Hugging Face Hub.

The card is written from the run directory, not from memory: the resolved config.yaml and manifest.json of each
training stage (what was actually run, with which library versions), the data manifest's hashes, and the
evaluation comparison when `rlr evaluate` wrote one. Someone holding only the exported folder can thus tell what
the model is, how it was trained, on which data, and how well it did.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from rlr.errors import UserError
from rlr.files import atomic_write_text, read_json
from rlr.paths import comparison_path, config_path, data_manifest_path, manifest_path, stage_path
from rlr.runs import library_versions

RL_KEYS = ("learning_rate", "max_steps", "num_train_epochs", "per_device_train_batch_size", "num_generations",
           "max_completion_length", "temperature", "loss_type", "scale_rewards", "beta", "epsilon", "epsilon_high",
           "importance_sampling_level", "num_iterations", "lr_scheduler_type")
SFT_KEYS = ("learning_rate", "max_steps", "num_train_epochs", "per_device_train_batch_size", "max_length",
            "packing", "lr_scheduler_type")
HEADLINE = ("pass@", "maj@", "avg@n", "greedy_accuracy")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return {}


def _is_hub_id(name: str) -> bool:
    return name.count("/") == 1 and not Path(name).exists() and not name.startswith((".", "/", "~"))


def _training_stages(run_root: Path | None, source: Any) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(stage, config.yaml, manifest.json) of the stages behind the export, oldest first."""
    if source.stage_dir is None or run_root is None:
        return []
    top = (source.stage or "model", _read_yaml(config_path(source.stage_dir)),
           _read_json(manifest_path(source.stage_dir)))
    stages = [top]
    init_from = ((top[1].get("rl") or {}).get("init_from")) if source.stage == "rl" else None
    sft = stage_path(run_root, "sft")
    if source.stage == "rl" and init_from in (None, "sft") and _read_json(manifest_path(sft)).get("status") == \
            "complete":
        stages.insert(0, ("sft", _read_yaml(config_path(sft)), _read_json(manifest_path(sft))))
    return stages


def _license(base: str) -> str | None:
    readme = Path(base) / "README.md"
    if readme.is_file():
        text = readme.read_text(errors="replace")
        if text.startswith("---"):
            front = _read_front_matter(text)
            return front.get("license")
    return None


def _read_front_matter(text: str) -> dict[str, Any]:
    try:
        return yaml.safe_load(text.split("---", 2)[1]) or {}
    except (IndexError, yaml.YAMLError):
        return {}


def _kv(settings: dict[str, Any], keys: tuple[str, ...]) -> str:
    return ", ".join(f"`{k}={settings[k]}`" for k in keys if settings.get(k) is not None) or "defaults"


def _stage_section(stage: str, config: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    section = config.get(stage) or {}
    trainer = section.get("trainer") or {}
    lines = [f"### {stage.upper()}", ""]
    if stage == "rl":
        lines.append(f"- Algorithm: `{section.get('algorithm', '?')}` (TRL {section.get('trainer_type', 'grpo')} "
                     "trainer)")
        rewards = config.get("rewards") or []
        shown = [f"`{r.get('name')}` x {r.get('weight', 1.0)}" + (f" {r['args']}" if r.get("args") else "")
                 for r in rewards]
        lines.append(f"- Rewards (weighted sum): {', '.join(shown) or 'none recorded'}")
    lines.append(f"- Hyperparameters: {_kv(trainer, RL_KEYS if stage == 'rl' else SFT_KEYS)} (others: TRL defaults)")
    lora = config.get("lora") or {}
    if section.get("use_lora", True):
        lines.append(f"- LoRA: r={lora.get('r')}, alpha={lora.get('alpha')}, dropout={lora.get('dropout')}, "
                     f"target_modules={lora.get('target_modules')}")
    else:
        lines.append("- Full-parameter training (no LoRA)")
    outputs = manifest.get("outputs") or {}
    done = {k: outputs[k] for k in ("steps", "final_loss", "train_time_s") if outputs.get(k) is not None}
    if done:
        lines.append(f"- Trained: {_kv(done, tuple(done))}")
    device = manifest.get("device") or {}
    if device:
        lines.append(f"- Device: {device.get('name')} ({device.get('dtype')}); finished {manifest.get('finished_at')}")
    return [*lines, ""]


def _data_section(run_root: Path) -> list[str]:
    manifest = _read_json(data_manifest_path(run_root))
    outputs = manifest.get("outputs") or {}
    rows = [f"| {name} | {info.get('rows', '?')} | `{info.get('sha256', '?')}` |" for name, info in outputs.items()
            if isinstance(info, dict)]
    if not rows:
        return []
    sources = [f"{s.get('split_role', '?')}: `{s.get('source')}`" + (f" (sha256 `{s['sha256']}`)" if s.get("sha256")
                                                                     else "")
               for s in (manifest.get("inputs") or {}).get("sources", []) if isinstance(s, dict)]
    lines = ["## Data", ""]
    if sources:
        lines += [f"Sources: {'; '.join(sources)}", ""]
    return [*lines, "| file | rows | sha256 |", "|---|---|---|", *rows, ""]


def eval_table(comparison: dict[str, Any]) -> list[str]:
    """Markdown table of `eval/results.json`: a row per evaluated model, a column per headline metric."""
    table = comparison.get("table") or {}
    columns: list[tuple[str, str]] = []
    for bench in comparison.get("benchmarks") or []:
        for row in table.values():
            for metric in (row.get(bench) or {}):
                if metric.startswith(HEADLINE) and not metric.endswith("_ci") and (bench, metric) not in columns:
                    columns.append((bench, metric))
    if not columns:
        return []

    def cell(value: Any) -> str:
        return f"{value:.3f}" if isinstance(value, (int, float)) else "-"

    lines = ["| model | " + " | ".join(f"{b} {m}" for b, m in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for label, row in table.items():
        lines.append(f"| {label} | " + " | ".join(cell((row.get(b) or {}).get(m)) for b, m in columns) + " |")
    return lines


def _load_snippet(where: str, merged: bool) -> list[str]:
    load = (f'model = AutoModelForCausalLM.from_pretrained("{where}", dtype="auto")' if merged else
            f'model = AutoModelForCausalLM.from_pretrained("{where}", dtype="auto")  # needs `pip install peft`')
    return ["```python", "from transformers import AutoModelForCausalLM, AutoTokenizer", "", load,
            f'tokenizer = AutoTokenizer.from_pretrained("{where}")',
            'messages = [{"role": "user", "content": "What is 17 + 25?"}]',
            "inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors=\"pt\", "
            "return_dict=True)",
            "# sampling settings (do_sample, temperature, top_p) come from generation_config.json",
            "out = model.generate(**inputs, max_new_tokens=64)",
            'print(tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))', "```"]


def write_model_card(out: Path, loaded: Any, source: Any, *, dtype: str, merged: bool, check: dict[str, Any],
                     repo: str | None) -> None:
    cfg = loaded.cfg
    # Training, data and eval come from the run that produced the source (another run's, with --from PATH);
    # a directory that is no stage of any run gets none of them rather than this run's, which may not apply.
    run_root = source.stage_dir.parent if source.stage_dir else None
    stages = _training_stages(run_root, source)
    trained_cfg = stages[-1][1] if stages else {}
    base = (trained_cfg.get("model") or {}).get("name_or_path") or cfg.model.name_or_path
    algorithm = next((c.get("rl", {}).get("algorithm") for s, c, _ in stages if s == "rl"), None)
    tags = ["rlr", "reasoning", *([algorithm] if algorithm else []), *[s for s, _, _ in stages if s == "sft"]]
    front: dict[str, Any] = {"library_name": "transformers" if merged else "peft"}
    if _is_hub_id(base):
        front["base_model"] = base
    if (license_ := _license(base)) is not None:
        front["license"] = license_
    front["tags"] = list(dict.fromkeys(tags))

    what = "merged into the base weights" if merged else "a LoRA adapter (needs peft and the base model)"
    lines = ["---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "", f"# {cfg.run.name}", "",
             f"Exported by rlr from `{source.ref.label}` of run `{cfg.run.name}`: {what}.",
             "", f"- Base model: `{base}`"]
    if source.ref.adapters:
        lines.append(f"- LoRA adapters applied, in order: {len(source.ref.adapters)}")
    template = trained_cfg.get("template") or {}
    if template:
        lines.append(f"- Prompt format: system prompt `{template.get('system') or 'none'}`, answer format "
                     f"`{template.get('answer_format')}`, chat template {'on' if template.get('chat') else 'off'}")
    lines += [f"- Weights: safetensors, `{dtype}`",
              f"- Check: reloaded logits differ from the source model by at most {check['max_abs_diff']:.3g} "
              f"(tolerance {check['tolerance']:.3g}) on a fixed {check['tokens']}-token input", "",
              "## How to load", "", *_load_snippet(repo or "PATH_TO_THIS_DIRECTORY", merged), ""]
    if stages:
        lines += ["## Training", ""]
        for stage, config, manifest in stages:
            lines += _stage_section(stage, config, manifest)
    lines += _data_section(run_root) if run_root else []
    comparison = _read_json(comparison_path(run_root)) if run_root else {}
    table = eval_table(comparison)
    if table:
        first = next(iter((comparison.get("models") or {}).values()), None) or {}
        settings = first.get("generation") or {}
        shown = _kv(settings, ("n", "temperature", "top_p", "max_new_tokens"))
        lines += ["## Evaluation", "", f"From `rlr evaluate` ({shown}); this model is the `{source.ref.label}` row "
                  "(and `export`, when the export itself was evaluated).", "", *table, ""]
    trained_with = stages[-1][2].get("versions") if stages else None
    lines += ["## Versions", "", f"- Exported with: {_kv(library_versions(), tuple(library_versions()))}"]
    if trained_with:
        lines.append(f"- Trained with: {_kv(trained_with, tuple(trained_with))}")
    atomic_write_text(out / "README.md", "\n".join(lines) + "\n")


def check_push_possible(repo: str) -> None:
    """Fail fast, before any work: offline mode, a malformed repo id, or no token."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        raise UserError(f"--push-to-hub {repo}: HF_HUB_OFFLINE is set, so nothing can be uploaded; unset it and "
                        "log in (`hf auth login`), or drop --push-to-hub (nothing was written)")
    from huggingface_hub import get_token
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo)
    except HFValidationError as e:
        raise UserError(f"--push-to-hub {repo}: not a valid repo id ({e}); use owner/name") from None
    if not get_token():
        raise UserError(f"--push-to-hub {repo}: no Hugging Face token; run `hf auth login` or set HF_TOKEN, or drop "
                        "--push-to-hub (nothing was written)")


def push_to_hub(folder: Path, repo: str, run_name: str) -> str:
    """Upload the finished export; a new repo is created private (make it public on the hub when ready)."""
    from huggingface_hub import create_repo, upload_folder

    try:
        url = create_repo(repo, private=True, exist_ok=True, repo_type="model")
        upload_folder(repo_id=repo, folder_path=folder, commit_message=f"rlr export of run {run_name}")
    except Exception as e:  # network, auth and hub errors all end the same way: the local export stands
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"--push-to-hub {repo} failed ({first}); the local export in {folder} is complete: retry with "
                        f"`hf upload {repo} {folder}`") from None
    return str(url)
