"""Models and tokenizers: loading (dtype, device, 4-bit), LoRA set-up, and loading a lineage.

A lineage (`ModelRef`, rlr/models/references.py) is a base plus the LoRA adapters stacked on it by earlier stages;
`load_model_ref` loads it, merging every adapter but the last.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlr.errors import UserError

if TYPE_CHECKING:
    from rlr.models.references import ModelRef


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
