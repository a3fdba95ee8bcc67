"""A model's sizes, read from its config.json without loading the model (so `rlr estimate` needs no weights).

Where config.json comes from, in order: a local model directory; the local Hugging Face cache (offline, no hub
call); the preset's `estimate.model_config`, which also overrides single keys of the other two.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlr.errors import UserError

# The config.json keys the estimate needs; the others have sane defaults (kv heads = heads, head_dim = hidden/heads).
REQUIRED_KEYS = ("hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads", "vocab_size")
OPTIONAL_KEYS = ("num_key_value_heads", "head_dim", "tie_word_embeddings", "attention_bias")
# families whose q/k/v projections carry a bias although their config.json does not say so
QKV_BIAS_FAMILIES = ("qwen2",)


@dataclass(frozen=True)
class ModelShape:
    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool
    qkv_bias: bool
    source: str  # where the sizes were read (a path, "hf cache: <file>" or "preset: estimate.model_config")
    max_positions: int | None = None  # max_position_embeddings: no sequence is longer

    def linears(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of the linear layers of one decoder layer (a Llama/Qwen-style block)."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        h, i = self.hidden, self.intermediate
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    def layer_params(self) -> int:
        weights = sum(a * b for a, b in self.linears().values())
        bias = (self.heads + 2 * self.kv_heads) * self.head_dim if self.qkv_bias else 0
        return weights + bias + 2 * self.hidden  # + the two RMSNorm weights

    def params(self) -> int:
        embeddings = self.vocab * self.hidden * (1 if self.tied else 2)
        return embeddings + self.layers * self.layer_params() + self.hidden

    def describe(self) -> str:
        return (f"{self.params() / 1e6:,.1f}M parameters: {self.layers} layers, hidden {self.hidden}, "
                f"intermediate {self.intermediate}, {self.heads}/{self.kv_heads} heads, vocab {self.vocab}")


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {path}: {e}; point model.name_or_path at a model directory with a valid "
                        "config.json") from None
    text = data.get("text_config")  # vision-language models keep the language model's sizes here
    return {**data, **text} if isinstance(text, dict) else data


def find_config(name_or_path: str, base_dir: Path, revision: str | None = None) -> tuple[dict[str, Any], str] | None:
    """(config.json contents, where it was found), or None when neither on disk nor in the local HF cache."""
    for root in (Path(name_or_path), base_dir / name_or_path):
        if (root / "config.json").is_file():
            return _read(root / "config.json"), str(root / "config.json")
    if not name_or_path or Path(name_or_path).is_absolute() or name_or_path.count("/") > 1:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    # HF_HUB_CACHE read here, not at huggingface_hub's import, so a cache named after import is honoured too
    cached = try_to_load_from_cache(name_or_path, "config.json", revision=revision,
                                    cache_dir=os.environ.get("HF_HUB_CACHE"))
    if isinstance(cached, str) and Path(cached).is_file():
        return _read(Path(cached)), f"hf cache: {cached}"
    return None


def model_shape(name_or_path: str, base_dir: Path, preset_keys: dict[str, Any], revision: str | None = None
                ) -> ModelShape:
    """Sizes of `name_or_path`, with `preset_keys` (estimate.model_config) on top; raises naming the missing keys."""
    found = find_config(name_or_path, base_dir, revision)
    data, source = found if found else ({}, "preset: estimate.model_config")
    if preset_keys:
        data = {**data, **preset_keys}
        source = source if not found else f"{source} + estimate.model_config"
    missing = [k for k in REQUIRED_KEYS if not isinstance(data.get(k), int)]
    if missing:
        where = ("its config.json lacks them" if found else
                 f"'{name_or_path}' is not a local model directory and not in the local Hugging Face cache")
        raise UserError(f"estimate: {where}; give the model's sizes in the preset as estimate.model_config: "
                        f"{{{', '.join(f'{k}: ...' for k in missing)}}} (optional: {', '.join(OPTIONAL_KEYS)}), "
                        f"or fetch its config.json once (huggingface-cli download {name_or_path or 'ID'} config.json)")
    heads = int(data["num_attention_heads"])
    hidden = int(data["hidden_size"])
    return ModelShape(
        hidden=hidden, layers=int(data["num_hidden_layers"]), intermediate=int(data["intermediate_size"]),
        heads=heads, kv_heads=int(data.get("num_key_value_heads") or heads),
        head_dim=int(data.get("head_dim") or hidden // heads), vocab=int(data["vocab_size"]),
        tied=bool(data.get("tie_word_embeddings", False)),
        qkv_bias=bool(data.get("attention_bias", data.get("model_type") in QKV_BIAS_FAMILIES)), source=source,
        max_positions=data.get("max_position_embeddings") if isinstance(data.get("max_position_embeddings"), int)
        else None)
