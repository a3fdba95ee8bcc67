"""The offline tiny model: loads with plain transformers, digits are single tokens, ChatML works."""

from __future__ import annotations


def test_tiny_model_loads_and_tokenizes_digits(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    n = sum(p.numel() for p in model.parameters())
    assert 0.8e6 < n < 1.3e6
    ids = tok("12345+678=")["input_ids"]
    assert tok.convert_ids_to_tokens(ids)[:5] == ["1", "2", "3", "4", "5"]
    text = tok.apply_chat_template([{"role": "user", "content": "1+2="}], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\n1+2=<|im_end|>\n<|im_start|>assistant\n"
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    assert model.generation_config.eos_token_id == tok.eos_token_id
