"""The check that an export reproduces the model it came from: logits on a fixed input, before and after.

Exports are checked, not trusted: a merge that drops the lower adapter of a stack, a tied embedding saved twice
or a wrong dtype in config.json all load without complaint and generate plausible text. Comparing logits on one
fixed input catches each of them in well under a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# (atol, rtol): allowed |logit diff| = atol + rtol * max|reference logit|. Half dtypes round every weight
# (bf16 keeps 8 mantissa bits, ~0.4% relative), so they get a tolerance relative to the logit scale.
TOLERANCE = {"float32": (1e-4, 0.0), "float16": (1e-4, 1e-2), "bfloat16": (1e-4, 5e-2)}
STRICT = TOLERANCE["float32"][0]
CHECK_TEXT = "Question: what is 17 + 25? <think> 7+5=12, 1+2+1=4 </think> The answer is 42."


class ExportCheckFailed(RuntimeError):
    """The reloaded export does not reproduce the model it came from (exit 1)."""


def logit_check(dtype: str, reference: Any, reloaded: Any, merged: Any = None,
                in_memory: Any = None) -> dict[str, Any]:
    """reference: the source model (unmerged top adapter, float32); merged: after merge_and_unload, float32;
    in_memory: the merged weights rounded to `dtype` and upcast; reloaded: the export loaded from disk.

    The merge and the save/load round trip are held to float32's atol even for a half-precision export, so the
    looser half-precision tolerance only ever covers the rounding itself.
    """
    check = compare_logits(reference, reloaded, dtype)
    check["merge_max_abs_diff"] = None if merged is None else max_abs_diff(reference, merged)
    check["roundtrip_max_abs_diff"] = None if in_memory is None else max_abs_diff(in_memory, reloaded)
    strict = [d for d in (check["merge_max_abs_diff"], check["roundtrip_max_abs_diff"]) if d is not None]
    check["passed"] = check["passed"] and all(d <= STRICT for d in strict)
    return check


def failure_reason(check: dict[str, Any]) -> str:
    if (check["merge_max_abs_diff"] or 0) > STRICT:
        return f"merging the LoRA changed the logits by {check['merge_max_abs_diff']:.3g} > {STRICT:g}"
    if (check["roundtrip_max_abs_diff"] or 0) > STRICT:
        return f"the saved model differs from the one in memory by {check['roundtrip_max_abs_diff']:.3g} > {STRICT:g}"
    return f"exported logits differ from the source model by {check['max_abs_diff']:.3g} > {check['tolerance']:.3g}"


def max_abs_diff(a: Any, b: Any) -> float:
    return float((a - b).abs().max()) if a.shape == b.shape else float("inf")


def reload_logits(out: Path, base: str, merged: bool, input_ids: Any) -> Any:
    """Logits of the export as a user would load it (upcast to float32, so only the weight rounding differs)."""
    import torch
    from transformers import AutoModelForCausalLM

    if merged:
        model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    else:
        from peft import PeftModel

        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), out)
        model = model.float()
    model.eval()
    with torch.no_grad():
        return model(input_ids=input_ids).logits.float()


def compare_logits(reference: Any, exported: Any, dtype: str) -> dict[str, Any]:
    atol, rtol = TOLERANCE[dtype]
    tolerance = atol + rtol * float(reference.abs().max())
    diff = max_abs_diff(reference, exported)
    return {"max_abs_diff": diff, "tolerance": tolerance, "atol": atol, "rtol": rtol, "passed": diff <= tolerance,
            "input": CHECK_TEXT, "tokens": int(reference.shape[1])}
