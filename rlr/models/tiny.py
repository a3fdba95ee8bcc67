"""An offline tiny model + tokenizer, built from nothing (no hub), for the quickstart and the tests.

The recipe (measured on the CPU machines rlr is tested on): a byte-level BPE tokenizer trained on task text, with
single-digit tokens (so arithmetic is learnable by a ~1M-parameter model), ChatML special tokens and chat template
(so TRL's conversational prompt/completion format works), and a randomly initialised Qwen2-architecture model.
"""

from __future__ import annotations

import random
from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# name -> Qwen2Config sizes. "tiny" is the quickstart model; "micro" is for fast unit tests; "20m" and "100m" are
# for measuring memory and speed at sizes where the weights, not the Python objects, dominate (rlr estimate).
SIZES = {
    "tiny": dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=2),
    "micro": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=1),
    "20m": dict(hidden_size=384, intermediate_size=1536, num_hidden_layers=9, num_attention_heads=6,
                num_key_value_heads=2),
    "100m": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                 num_key_value_heads=4),
}


def _corpus(seed: int, n: int = 4000) -> list[str]:
    """Text the tokenizer is trained on: arithmetic with traces, tags and the words of the shipped prompts."""
    rng = random.Random(seed)
    lines = [
        "<think> </think> <answer> </answer> \\boxed{} The answer is",
        "You are a helpful assistant. Think step by step inside <think> </think> tags, then give the final answer.",
        "Put your final answer within \\boxed{}. Give the final answer after </think>.",
        "A conversation between User and Assistant. The user asks a question, and the Assistant solves it.",
        "Using the numbers, create an equation that equals the target. You can use + - * / and each number once.",
    ]
    for _ in range(n):
        a, b = rng.randint(0, 999), rng.randint(0, 999)
        op = rng.choice("+-*")
        lines.append(f"{a}{op}{b}= <think>{a % 10}{op}{b % 10}=x</think> {eval(f'{a}{op}{b}')}")  # noqa: S307
    return lines


def build_tokenizer(seed: int = 0, vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(_corpus(seed), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None, unk_token=None,
        additional_special_tokens=["<|im_start|>"],
    )
    fast.chat_template = CHATML_TEMPLATE
    fast.padding_side = "left"  # batched generation needs left padding
    fast.model_max_length = 256
    return fast


def build_tiny_model(out_dir: str | Path, *, size: str = "tiny", seed: int = 0, max_positions: int = 256) -> Path:
    """Write a randomly initialised model + tokenizer to `out_dir`; returns the directory."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, Qwen2Config

    from rlr.errors import UserError

    if size not in SIZES:
        raise UserError(f"unknown tiny model size '{size}'; choose one of {', '.join(SIZES)}")
    out = Path(out_dir)
    tokenizer = build_tokenizer(seed)
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **SIZES[size],
    )
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def count_parameters(path: str | Path) -> int:
    from transformers import AutoModelForCausalLM

    return sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(path).parameters())
