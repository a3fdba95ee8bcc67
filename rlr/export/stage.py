"""`rlr export`: turn a stage's output (full weights, a LoRA adapter, or a stack of them) into a model directory
that plain `transformers` loads, with no rlr and no peft installed.

Why it is more than `merge_and_unload().save_pretrained()`:
- An RL LoRA trained on top of an SFT LoRA is a stack; merging only the top one silently drops SFT. The lineage
  (`rlr_model.json`) says what lies underneath, so every layer is merged, in order.
- Merging happens in float32 on the CPU and the cast to `export.dtype` comes last, so half-precision rounding
  happens once instead of once per adapter.
- The export is checked, not trusted: it is reloaded from disk and its logits on a fixed input are compared with
  the in-memory unmerged model (float32: atol 1e-4; bf16/fp16 round, see rlr/export/check.py). The max abs diff
  goes into the manifest; a mismatch marks the export failed (exit 1).
- Nothing half-written ever sits at the target: everything is written to a temp dir beside it and renamed at the
  end. A crash leaves the target as it was; a failed check is published with status "failed" so it can be read.
- `--push-to-hub` is checked before any work (offline, no token: exit 2 with nothing written) and the upload
  happens after the local export is complete; an upload error leaves a complete local export and says how to retry.

An adapter-only export (`export.merge_lora: false`) of a stacked adapter is refused: the top adapter was trained
on the merged lower stage, and applied to the plain base model it would silently compute something else.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path
from typing import Any

from rlr.config.load import LoadedConfig
from rlr.device import DeviceInfo
from rlr.errors import UserError
from rlr.export.check import CHECK_TEXT, TOLERANCE, ExportCheckFailed, failure_reason, logit_check, reload_logits
from rlr.files import atomic_write_json, default_file_mode, file_sha256, read_json, replace_dir, restore_replaced_dir
from rlr.models.loading import load_model_ref, load_tokenizer, torch_dtype
from rlr.models.references import LINEAGE_FILE, ModelRef, resolve_model_ref
from rlr.paths import CONFIG_FILE, MANIFEST_FILE, METRICS_FILE, MODEL_SUBDIR, config_path, manifest_path
from rlr.runs import LOCK_FILE, StageRun, process_alive
from rlr.stage import ExportOptions

NOT_EXPORTED = {LINEAGE_FILE, "training_args.bin", MANIFEST_FILE, CONFIG_FILE, METRICS_FILE, LOCK_FILE}
CPU_FP32 = DeviceInfo(device="cpu", dtype="float32", n_gpus=0, bf16=False, fp16=False, use_cpu=True, name="cpu")


@dataclasses.dataclass
class Source:
    ref: ModelRef
    stage: str | None  # sft / rl when the source is a stage's model dir (of this run, or another with --from)
    stage_dir: Path | None  # the directory holding that stage's config.yaml + manifest.json


def resolve_source(spec: str | None, cfg: Any) -> Source:
    """--from, else export.from_stage; auto: rl if complete, else sft. A model/adapter directory works too."""
    spec = spec or cfg.export.from_stage
    if spec == "auto":
        done = [s for s in ("rl", "sft") if StageRun.of(cfg, s).is_complete()]
        if not done:
            raise UserError(f"run '{cfg.run.name}' has no complete sft or rl stage to export; run `rlr sft <preset>` "
                            "or `rlr train-rl <preset>` first, or pass --from PATH")
        spec = done[0]
    if spec in ("sft", "rl"):
        stage = StageRun.of(cfg, spec)
        return Source(resolve_model_ref(spec, cfg), spec, stage.path)
    path = Path(spec)
    if not path.is_dir():
        raise UserError(f"--from {spec}: not a stage or a directory; use sft, rl, auto or a model/adapter directory")
    ref = resolve_model_ref(str(path), cfg)
    stage_dir = path.parent if config_path(path.parent).is_file() and path.name == MODEL_SUBDIR else None
    return Source(ref, stage_dir.name if stage_dir else None, stage_dir)


def export_dtype(requested: str, source: Source) -> str:
    """auto = the dtype the source stage trained in (its manifest), else the base model's config, else float32."""
    if requested != "auto":
        return requested
    if source.stage_dir and manifest_path(source.stage_dir).is_file():
        dtype = (read_json(manifest_path(source.stage_dir)).get("device") or {}).get("dtype")
        if dtype in TOLERANCE:
            return dtype
    config = Path(source.ref.base) / "config.json"
    if config.is_file():
        data = read_json(config)
        dtype = data.get("dtype") or data.get("torch_dtype")
        if dtype in TOLERANCE:
            return dtype
    return "float32"


def check_target(target: Path, overwrite: bool, own_dir: bool = False) -> None:
    """Refuse to replace an existing export without --overwrite, and never replace a directory rlr did not write.
    `own_dir`: the run's own export/ directory, which is rlr's even when its manifest got damaged."""
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        return
    try:
        manifest = read_json(manifest_path(target))
    except (OSError, ValueError):
        manifest = {"stage": "export", "status": "unknown (unreadable manifest.json)"} if own_dir else {}
    if not isinstance(manifest, dict) or manifest.get("stage") != "export":
        raise UserError(f"{target} exists and is not an rlr export; choose a new or empty directory with --out")
    if not overwrite:
        status = manifest.get("status", "unknown")
        raise UserError(f"{target} already holds an export (status: {status}); pass --overwrite to replace it")


def recover_leftovers(target: Path) -> None:
    """Clean up after an export that was killed: its temp dir goes; a previous export it had moved aside but not
    yet replaced (killed between the two renames) goes back in place."""
    restore_replaced_dir(target)
    for path in target.parent.glob(f".{target.name}.tmp-*"):
        pid = path.name.rsplit("-", 1)[-1]
        if not (pid.isdigit() and process_alive(int(pid))):
            shutil.rmtree(path, ignore_errors=True)


def run_export(loaded: LoadedConfig, opts: ExportOptions) -> dict[str, Any]:
    from rlr.config.coerce import to_dict
    from rlr.export.card import check_push_possible, push_to_hub, write_model_card

    started = time.time()
    cfg = loaded.cfg
    if opts.resume:
        raise UserError("rlr export has nothing to resume (it writes in one go); drop --resume")
    out = opts.out
    target = Path(out) if out else StageRun.of(cfg, "export").path
    repo = opts.push_to_hub
    source = resolve_source(opts.from_stage, cfg)
    recover_leftovers(target)
    check_target(target, opts.overwrite, own_dir=not out)
    if repo:
        check_push_possible(repo)  # before any work: offline or no token costs nothing
    merge = cfg.export.merge_lora or not source.ref.adapters
    if not merge and len(source.ref.adapters) > 1:
        raise UserError(f"{source.ref.label} is a stack of {len(source.ref.adapters)} LoRA adapters; the top one only "
                        "works on the merged lower stage, so it cannot be exported alone: set export.merge_lora=true")
    dtype = export_dtype(cfg.export.dtype, source)

    if out:  # a read-only --out is the flag's fault, not run.output_dir's (which the stage check would name)
        from rlr.disk import check_writable

        check_writable(target, key="--out")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    run = StageRun(tmp.parent, tmp.name)
    inputs = {"source": source.ref.label, "lineage": source.ref.as_dict(), "stage": source.stage}
    try:  # from the first write on: a full disk can strike at the manifest already
        run.start(config=to_dict(cfg), overwrite=False, resume=False, device=CPU_FP32.as_dict(), inputs=inputs)
        run.update(stage="export", run=cfg.run.name, target=str(target))
        check = write_model(source, cfg, tmp, dtype, merge)
        write_model_card(tmp, loaded, source, dtype=dtype, merged=merge, check=check, repo=repo)
        files = {p.name: file_sha256(p) for p in sorted(tmp.iterdir()) if p.name not in NOT_EXPORTED}
        status = "complete" if check["passed"] else "failed"
        error = None if check["passed"] else failure_reason(check)
        run.finish(status, outputs={"files": files, "dtype": dtype, "merged": merge, "check": check}, error=error)
        publish(tmp, target)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, KeyboardInterrupt):
            from rlr.console import stderr

            kept = f"the previous export in {target} is untouched" if target.exists() else f"{target} was not created"
            stderr.print(f"export interrupted: the partial copy was removed and {kept}; rerun the same command to "
                         "export again", markup=False, highlight=False, soft_wrap=True)
        raise
    if not check["passed"]:
        raise ExportCheckFailed(f"{error}; the export in {target} is marked failed (report this with the manifest)")
    summary = {"run": cfg.run.name, "source": source.ref.label, "export_dir": str(target), "dtype": dtype,
               "merged": merge, "adapters_merged": len(source.ref.adapters) if merge else 0,
               "logits_max_abs_diff": check["max_abs_diff"], "tolerance": check["tolerance"]}
    if repo:
        summary["pushed_to"] = push_to_hub(target, repo, cfg.run.name)
        manifest = read_json(manifest_path(target))
        manifest["outputs"]["pushed_to"] = summary["pushed_to"]
        atomic_write_json(manifest_path(target), manifest)
    summary["wall_s"] = round(time.time() - started, 2)  # the key every stage summary uses
    return summary


def publish(tmp: Path, target: Path) -> None:
    """Rename the finished temp dir onto the target (an old export is moved aside first, then deleted)."""
    mode = default_file_mode()
    for path in tmp.iterdir():  # temp-file writers leave 0600; an export is meant to be shared
        path.chmod(mode)
    replace_dir(tmp, target)


def write_model(source: Source, cfg: Any, out: Path, dtype: str, merge: bool) -> dict[str, Any]:
    """Weights, tokenizer and generation config into `out`; returns the logit checks against the source model.

    Three comparisons, so that a half-precision export is still checked strictly where it can be: the merge
    itself in float32 (atol 1e-4), the files on disk against the same weights in memory (atol 1e-4), and the
    export against the source (atol 1e-4 in float32; relative to the logit scale in bf16/fp16, which round).
    """
    import torch

    model_cfg = dataclasses.replace(cfg.model, load_in_4bit=False)  # merging needs real weights, not 4-bit ones
    tokenizer = load_tokenizer(source.ref.tokenizer_source(), model_cfg)
    input_ids = tokenizer(CHECK_TEXT, return_tensors="pt").input_ids
    model = load_model_ref(source.ref, model_cfg, CPU_FP32).eval()  # lower adapters merged, the top one not

    def forward(m: Any) -> Any:
        with torch.no_grad():
            return m(input_ids=input_ids).logits.float()

    reference = forward(model)
    merged = in_memory = None
    if merge:
        if source.ref.adapters:
            model = model.merge_and_unload()
            merged = forward(model)
        # Buffers that are not saved (rotary inv_freq) are rebuilt in float32 on load, so they must not stay rounded
        saved = model.state_dict().keys()
        unsaved = {n: b.clone() for n, b in model.named_buffers() if n not in saved}
        model.to(torch_dtype(dtype))
        model.generation_config = generation_config(model.generation_config, tokenizer, cfg.eval)
        model.save_pretrained(out, max_shard_size=cfg.export.max_shard_size)
        model.float()  # the rounded weights, upcast: what a reload from disk must reproduce exactly
        for name, buffer in model.named_buffers():
            if name in unsaved:
                buffer.copy_(unsaved[name])
        in_memory = forward(model)
    else:
        copy_adapter(Path(source.ref.adapters[-1]), out, source.ref.base, dtype)
        generation_config(model.generation_config, tokenizer, cfg.eval).save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / LINEAGE_FILE).unlink(missing_ok=True)  # the export stands alone: no rlr lineage
    del model
    reloaded = reload_logits(out, source.ref.base, merge, input_ids)
    return logit_check(dtype, reference, reloaded, merged=merged, in_memory=in_memory)


def generation_config(base: Any, tokenizer: Any, eval_cfg: Any) -> Any:
    """The base model's generation config with eos/pad from the tokenizer and the sampling used in evaluation."""
    import copy

    gen = copy.deepcopy(base)
    eos = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
    eos = [e for e in eos if e is not None]
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
        eos.append(tokenizer.eos_token_id)
    gen.eos_token_id = eos[0] if len(eos) == 1 else eos
    gen.pad_token_id = tokenizer.pad_token_id
    if eval_cfg.temperature > 0:
        gen.do_sample, gen.temperature, gen.top_p = True, eval_cfg.temperature, eval_cfg.top_p
    else:
        gen.do_sample, gen.temperature, gen.top_p = False, None, None
    return gen


def copy_adapter(adapter_dir: Path, out: Path, base: str, dtype: str) -> None:
    """The adapter files alone, pointing at the base they were trained on, cast to `dtype` unless auto."""
    out.mkdir(parents=True, exist_ok=True)
    for path in adapter_dir.iterdir():
        if path.is_file() and path.name not in NOT_EXPORTED:
            shutil.copy2(path, out / path.name)
    config = read_json(out / "adapter_config.json")
    config["base_model_name_or_path"] = base
    atomic_write_json(out / "adapter_config.json", config)
    weights = out / "adapter_model.safetensors"
    if weights.is_file():
        from safetensors.torch import load_file, save_file

        tensors = load_file(weights)
        target = torch_dtype(dtype)
        save_file({k: v.to(target) if v.is_floating_point() else v for k, v in tensors.items()}, weights,
                  metadata={"format": "pt"})
