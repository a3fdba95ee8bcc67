"""An offline tiny model + tokenizer, built from nothing (no hub), for the quickstart and the tests.

The recipe (measured on the CPU machines rlr is tested on): a byte-level BPE tokenizer trained on task text, with
single-digit tokens (so arithmetic is learnable by a ~1M-parameter model), ChatML special tokens and chat template
(so TRL's conversational prompt/completion format works), and a randomly initialised Qwen2-architecture model.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from rlr.trl_internals import QWEN_TOOL_RESPONSE_TEMPLATE, has_response_template, set_response_template

# ChatML, plus Qwen2.5's tool-call format (so TRL's tool loop and its Qwen parser work offline): an assistant turn
# with tool calls renders `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, tool replies render as a user
# turn of `<tool_response>` blocks, exactly as Qwen2.5-Instruct does. Two deliberate differences from Qwen2.5: no
# default system prompt, and the tools are listed as `name(arg, ...)` instead of their full JSON schemas, which would
# not fit a 256-token context. Without tools and tool turns the output is plain ChatML, byte for byte what the tiny
# model rendered before tools existed (the quickstart's figures depend on it).
CHATML_TEMPLATE = (
    "{%- if tools %}"
    "{{- '<|im_start|>system\n' }}"
    "{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] + '\n\n' }}{%- endif %}"
    "{{- 'Tools:' }}"
    "{%- for tool in tools %}{%- set f = tool.function if tool.function is defined else tool %}"
    "{{- ' ' + f.name + '(' + (f.parameters.properties | list | join(', ')) + ')' }}"
    "{%- endfor %}"
    "{{- '<|im_end|>\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' and loop.first and tools %}"
    "{%- elif message['role'] == 'assistant' and message.tool_calls %}"
    "{{- '<|im_start|>assistant\n' + (message['content'] or '') }}"
    "{%- for call in message.tool_calls %}{%- set c = call.function if call.function is defined else call %}"
    "{{- '<tool_call>{\"name\": \"' + c.name + '\", \"arguments\": ' + (c.arguments | tojson) + '}</tool_call>' }}"
    "{%- endfor %}"
    "{{- '<|im_end|>\n' }}"
    "{%- elif message['role'] == 'tool' %}"
    "{%- if loop.first or messages[loop.index0 - 1]['role'] != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}"
    "{{- '\n<tool_response>\n' + message['content'] + '\n</tool_response>' }}"
    "{%- if loop.last or messages[loop.index0 + 1]['role'] != 'tool' %}{{- '<|im_end|>\n' }}{%- endif %}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}"
)
# How tokenizer.parse_response() (TRL's tool loop) reads an assistant turn back: a TRL touchpoint, so it lives in
# rlr/trl_internals.py with the other ones.
RESPONSE_TEMPLATE = QWEN_TOOL_RESPONSE_TEMPLATE
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


def build_tokenizer(seed: int = 0, vocab_size: int = 400, max_length: int = 256):
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
    fast.model_max_length = max_length
    return fast


def attach_tool_parser(tokenizer: Any) -> bool:
    """Give a tiny-model tokenizer TRL's response parser (RESPONSE_TEMPLATE), for runs with tools only.

    Not saved with the model: once a tokenizer has a `response_template`, TRL decodes every conversational
    completion through `parse_response` instead of `batch_decode`, which changes the text rewards see (the golden
    curves moved), so runs without tools keep the plain decode they were measured with. True when attached.
    """
    if not has_response_template(tokenizer) and tokenizer.chat_template == CHATML_TEMPLATE:
        set_response_template(tokenizer, RESPONSE_TEMPLATE)
        return True
    return False


def build_tiny_model(out_dir: str | Path, *, size: str = "tiny", seed: int = 0, max_positions: int = 256) -> Path:
    """Write a randomly initialised model + tokenizer to `out_dir`; returns the directory.

    `max_positions` is the context length; the weights do not depend on it (rotary positions have no parameters), so
    a 1024-position model for tool-use runs is the same model as the 256-position default.
    """
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, Qwen2Config

    from rlr.errors import UserError

    if size not in SIZES:
        raise UserError(f"unknown tiny model size '{size}'; choose one of {', '.join(SIZES)}")
    out = Path(out_dir)
    tokenizer = build_tokenizer(seed, max_length=max_positions)
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
