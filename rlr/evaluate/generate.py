"""Generation backends for `rlr evaluate`: batched transformers `generate`, or vLLM on a CUDA GPU.

The HF path is where a CPU run spends its time, so it avoids the two classic wastes of a naive loop:
- one prompt per `generate` call leaves the matrix units idle; prompts go in batches (left-padded, because a
  decoder-only model continues from the last position of each row);
- a batch runs as long as its longest prompt, so prompts are sorted by token length first (order restored after),
  which keeps padding small; n samples per prompt come from `num_return_sequences`, so each prompt is encoded once.

A completion is "truncated" when no end-of-sequence token appeared within `max_new_tokens`; its length counts
generated tokens up to and including the first eos.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rlr.errors import UserError
from rlr.interrupts import raise_if_interrupted


@dataclass(frozen=True)
class GenerationSettings:
    """How to sample: `greedy` ignores temperature/top_p and draws one completion per prompt."""

    n: int = 1
    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int = 512
    batch_size: int = 32
    seed: int = 42
    greedy: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "temperature": self.temperature, "top_p": self.top_p,
                "max_new_tokens": self.max_new_tokens, "batch_size": self.batch_size, "seed": self.seed,
                "greedy": self.greedy}


@dataclass
class Completion:
    text: str
    length: int
    truncated: bool
    episode: dict[str, Any] | None = None  # a tool-calling episode's transcript and counts (evaluate/tool_rollout.py)


@dataclass
class GenerationResult:
    """Completions per prompt (`n` each, in the order the prompts were given) and what it cost."""

    completions: list[list[Completion]]
    prompt_texts: list[str]
    seconds: float
    generated_tokens: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return self.generated_tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def problems_per_s(self) -> float:
        return len(self.completions) / self.seconds if self.seconds > 0 else 0.0


def prompt_to_text(prompt: Any, tokenizer: Any) -> str:
    """Chat messages through the tokenizer's chat template (with the assistant turn opened); strings as-is."""
    if isinstance(prompt, str):
        return prompt
    if not getattr(tokenizer, "chat_template", None):
        raise UserError("the prompts are chat messages but the tokenizer has no chat template; set "
                        "model.chat_template or template.chat=false")
    return tokenizer.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)


def eos_token_ids(tokenizer: Any, model: Any | None = None) -> set[int]:
    """Every id that ends a completion: the tokenizer's eos plus the generation config's (Qwen lists several)."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    return ids


def split_completion(ids: Sequence[int], eos: set[int]) -> tuple[list[int], int, bool]:
    """(tokens before eos, length in tokens incl. eos, truncated) of one generated row (padding after eos)."""
    for i, token in enumerate(ids):
        if token in eos:
            return list(ids[:i]), i + 1, False
    return list(ids), len(ids), True  # generation only stops without eos at max_new_tokens


def encode_prompts(texts: Sequence[str], tokenizer: Any, chat: Sequence[bool]) -> list[list[int]]:
    """Token ids per prompt; chat-rendered text already holds its special tokens, so none are added again."""
    return [tokenizer(text, add_special_tokens=not is_chat)["input_ids"] for text, is_chat in zip(texts, chat,
                                                                                                   strict=True)]


def progress_bar() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from rlr.console import stderr

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("problems"),
        TextColumn("{task.fields[pps]:.2f} problems/s  {task.fields[tps]:.0f} tokens/s"), TimeElapsedColumn(),
        console=stderr, transient=True,
    )


class HFGenerator:
    """transformers `generate` on an already-loaded model (a PeftModel works as is: adapters stay unmerged)."""

    backend = "hf"

    def __init__(self, model: Any, tokenizer: Any, device: str = "cpu") -> None:
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self.eos = eos_token_ids(tokenizer, model)
        if tokenizer.pad_token_id is None:
            raise UserError("the tokenizer has no pad token; set one (e.g. its eos) in the model's tokenizer files")

    def generate(self, prompts: Sequence[Any], settings: GenerationSettings, description: str = "generating",
                 show_progress: bool = True) -> GenerationResult:
        import torch

        texts = [prompt_to_text(p, self.tokenizer) for p in prompts]
        encoded = encode_prompts(texts, self.tokenizer, [not isinstance(p, str) for p in prompts])
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        n = 1 if settings.greedy else settings.n
        results: list[list[Completion]] = [[] for _ in prompts]
        kwargs = self.generate_kwargs(settings, n)
        generated = 0
        torch.manual_seed(settings.seed)
        t0 = time.perf_counter()
        progress = progress_bar() if show_progress else None
        task = progress.add_task(description, total=len(prompts), pps=0.0, tps=0.0) if progress else None
        if progress:
            progress.start()
        try:
            with torch.inference_mode():
                for start in range(0, len(order), settings.batch_size):
                    raise_if_interrupted()
                    batch_idx = order[start:start + settings.batch_size]
                    batch = self.tokenizer.pad({"input_ids": [encoded[i] for i in batch_idx]}, padding=True,
                                               return_tensors="pt")
                    batch = {k: v.to(self.device) for k, v in batch.items()}
                    out = self.model.generate(**batch, **kwargs)
                    new_tokens = out[:, batch["input_ids"].shape[1]:].tolist()
                    for row, ids in enumerate(new_tokens):
                        kept, length, truncated = split_completion(ids, self.eos)
                        text = self.tokenizer.decode(kept, skip_special_tokens=True)
                        results[batch_idx[row // n]].append(Completion(text, length, truncated))
                        generated += length
                    if progress:
                        elapsed = time.perf_counter() - t0
                        progress.update(task, advance=len(batch_idx), pps=(start + len(batch_idx)) / elapsed,
                                        tps=generated / elapsed)
        finally:
            if progress:
                progress.stop()
        return GenerationResult(results, texts, time.perf_counter() - t0, generated)

    def generate_kwargs(self, settings: GenerationSettings, n: int) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_new_tokens": settings.max_new_tokens, "num_return_sequences": n,
            "pad_token_id": self.tokenizer.pad_token_id, "eos_token_id": sorted(self.eos),
        }
        if settings.greedy or settings.temperature <= 0:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p, top_k=0)
        return kwargs


class VLLMGenerator:
    """vLLM offline engine; LoRA adapters through LoRARequest (one adapter: vLLM cannot stack them)."""

    backend = "vllm"

    def __init__(self, base: str, adapter: str | None, tokenizer: Any, dtype: str, seed: int,
                 max_model_len: int | None = None) -> None:
        from vllm import LLM

        self.tokenizer = tokenizer
        self.adapter = adapter
        self.llm = LLM(model=base, dtype=dtype, seed=seed, enable_lora=adapter is not None,
                       max_model_len=max_model_len)

    def generate(self, prompts: Sequence[Any], settings: GenerationSettings, description: str = "generating",
                 show_progress: bool = True) -> GenerationResult:
        from vllm import SamplingParams

        texts = [prompt_to_text(p, self.tokenizer) for p in prompts]
        greedy = settings.greedy or settings.temperature <= 0
        params = SamplingParams(n=1 if settings.greedy else settings.n, temperature=0.0 if greedy else
                                settings.temperature, top_p=1.0 if greedy else settings.top_p,
                                max_tokens=settings.max_new_tokens, seed=settings.seed)
        lora = None
        if self.adapter:
            from vllm.lora.request import LoRARequest

            lora = LoRARequest("adapter", 1, self.adapter)
        t0 = time.perf_counter()
        outputs = self.llm.generate(texts, params, lora_request=lora, use_tqdm=show_progress)
        results: list[list[Completion]] = []
        generated = 0
        for out in outputs:
            row = []
            for c in out.outputs:
                length = len(c.token_ids)
                row.append(Completion(c.text, length, c.finish_reason == "length"))
                generated += length
            results.append(row)
        return GenerationResult(results, texts, time.perf_counter() - t0, generated)


def check_vllm_available() -> None:
    """vLLM needs both the package and a CUDA GPU; say how to get either, or to fall back to hf."""
    import torch

    try:
        import vllm  # noqa: F401
    except ImportError:
        ok = False
    else:
        ok = torch.cuda.is_available()
    if not ok:
        raise UserError("vLLM needs a CUDA GPU and `pip install 'rlr[vllm]'`; use eval.backend=hf")
