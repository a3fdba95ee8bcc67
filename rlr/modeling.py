"""Models and tokenizers: loading, LoRA, and the lineage that chains stages through the run directory.

Each training stage writes its final model to `<stage>/model/`: either full weights, or a LoRA adapter plus
`rlr_model.json` naming the base and any adapters underneath it (an RL LoRA trained on top of an SFT LoRA is a
stack of two). `ModelRef` is that lineage; every later stage (RL init, evaluate, export) loads through it, so
no path is copied by hand from one stage to the next.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlr.errors import UserError

MODEL_SUBDIR = "model"
LINEAGE_FILE = "rlr_model.json"
STAGE_NAMES = ("sft", "rl", "export")


@dataclass
class ModelRef:
    """A base model plus the LoRA adapters applied on top of it, in order."""

    base: str
    adapters: list[str] = field(default_factory=list)
    label: str = ""

    @property
    def is_adapter(self) -> bool:
        return bool(self.adapters)

    def as_dict(self) -> dict[str, Any]:
        return {"base": self.base, "adapters": self.adapters, "label": self.label}

    def tokenizer_source(self) -> str:
        """The newest directory of the lineage that ships a tokenizer (a stage may have changed its chat template)."""
        for path in reversed(self.adapters):
            if (Path(path) / "tokenizer_config.json").is_file():
                return path
        return self.base


def run_root(cfg: Any) -> Path:
    return Path(cfg.run.output_dir) / cfg.run.name


def stage_model_dir(cfg: Any, stage: str) -> Path:
    return run_root(cfg) / stage / (MODEL_SUBDIR if stage != "export" else "")


def write_lineage(model_dir: Path, ref: ModelRef) -> None:
    from rlr.runs import atomic_write_json

    atomic_write_json(Path(model_dir) / LINEAGE_FILE, ref.as_dict())


def ref_from_dir(path: Path, label: str = "") -> ModelRef:
    """Read what a model directory holds: full weights, or an adapter (with its lineage when rlr wrote it)."""
    path = Path(path)
    lineage = path / LINEAGE_FILE
    if lineage.is_file():
        data = json.loads(lineage.read_text())
        return ModelRef(base=data["base"], adapters=list(data.get("adapters", [])), label=label or str(path))
    adapter_cfg = path / "adapter_config.json"
    if adapter_cfg.is_file():
        base = json.loads(adapter_cfg.read_text()).get("base_model_name_or_path")
        if not base:
            raise UserError(f"{adapter_cfg} names no base_model_name_or_path; set it to the base model")
        return ModelRef(base=base, adapters=[str(path.resolve())], label=label or str(path))
    return ModelRef(base=str(path), label=label or str(path))


def resolve_model_ref(ref: str, cfg: Any) -> ModelRef:
    """`base`, a stage name of this run (sft, rl, export), or a model/adapter directory or hub id."""
    if ref == "base":
        return ModelRef(base=cfg.model.name_or_path, label="base")
    if ref in STAGE_NAMES:
        from rlr.runs import StageRun

        stage = StageRun.of(cfg, ref)
        if not stage.is_complete():
            raise UserError(f"stage '{ref}' of run '{cfg.run.name}' is not complete ({stage.path}); run "
                            f"`rlr {'train-rl' if ref == 'rl' else ref} <preset>` first or name a model path")
        return ref_from_dir(stage_model_dir(cfg, ref), label=ref)
    path = Path(ref)
    if path.exists():
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            raise UserError(f"{ref} is not a model directory (no config.json or adapter_config.json)")
        return ref_from_dir(path)
    if "/" in ref and not ref.startswith((".", "/")):
        return ModelRef(base=ref, label=ref)  # a hub id
    raise UserError(f"model '{ref}' not found: use base, sft, rl, export, a model directory or a hub id")


def load_tokenizer(name_or_path: str, model_cfg: Any | None = None, padding_side: str = "left") -> Any:
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {}
    if model_cfg is not None:
        kwargs = {"revision": model_cfg.revision, "trust_remote_code": model_cfg.trust_remote_code}
    try:
        tok = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
    except OSError as e:
        raise UserError(f"cannot load the tokenizer of '{name_or_path}': {str(e).splitlines()[0]}") from None
    if model_cfg is not None and model_cfg.chat_template:
        template = model_cfg.chat_template
        if template.endswith(".jinja") and Path(template).is_file():
            template = Path(template).read_text()
        tok.chat_template = template
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token  # many base models ship without one; generation needs it
    tok.padding_side = padding_side
    return tok


def torch_dtype(name: str) -> Any:
    import torch

    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]


def model_load_kwargs(model_cfg: Any, device: Any) -> dict[str, Any]:
    """Keyword arguments for AutoModelForCausalLM.from_pretrained (also TRL's model_init_kwargs)."""
    kwargs: dict[str, Any] = {"dtype": torch_dtype(device.dtype)}
    if model_cfg.attn_implementation:
        kwargs["attn_implementation"] = model_cfg.attn_implementation
    if model_cfg.revision:
        kwargs["revision"] = model_cfg.revision
    if model_cfg.trust_remote_code:
        kwargs["trust_remote_code"] = True
    if model_cfg.load_in_4bit:
        if device.device != "cuda":
            raise UserError("model.load_in_4bit (QLoRA) needs a CUDA GPU; set model.load_in_4bit=false here")
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch_dtype(device.dtype),
            bnb_4bit_use_double_quant=True,
        )
    return kwargs


def load_base_model(name_or_path: str, model_cfg: Any, device: Any) -> Any:
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(name_or_path, **model_load_kwargs(model_cfg, device))
    except OSError as e:
        raise UserError(f"cannot load model '{name_or_path}': {str(e).splitlines()[0]}; check model.name_or_path "
                        "(offline: a local directory, or a hub id already in the cache)") from None
    return model


def load_model_ref(ref: ModelRef, model_cfg: Any, device: Any, *, merge: bool = False) -> Any:
    """Base + adapters. Adapters under the last are merged; the last stays a PeftModel unless `merge`."""
    model = load_base_model(ref.base, model_cfg, device)
    if not ref.adapters:
        return model
    from peft import PeftModel

    for i, adapter in enumerate(ref.adapters):
        model = PeftModel.from_pretrained(model, adapter)
        if merge or i < len(ref.adapters) - 1:
            model = model.merge_and_unload()
    return model


def peft_lora_config(lora: Any, task_type: str = "CAUSAL_LM") -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=lora.target_modules,
        use_rslora=lora.use_rslora, task_type=task_type, bias="none",
    )


def check_lora_targets(model: Any, lora: Any) -> None:
    """Fail before training when lora.target_modules matches nothing (peft's own error is cryptic)."""
    targets = lora.target_modules
    if targets == "all-linear":
        return
    names = {name.split(".")[-1] for name, _ in model.named_modules()}
    missing = [t for t in ([targets] if isinstance(targets, str) else targets) if t not in names]
    if missing:
        import torch

        linear = sorted({n.split(".")[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise UserError(f"lora.target_modules: {', '.join(missing)} match no module of this model; "
                        f"use all-linear or some of: {', '.join(linear)}")
