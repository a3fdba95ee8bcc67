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


OLD_CHATML = (  # the template before tool calls existed: prompts without tools must render exactly as they did
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression.

    Args:
        expression: The expression, e.g. 12*34.
    """
    return expression


def test_tiny_chat_template_renders_and_parses_tool_calls_the_way_trl_does(micro_model):
    from transformers import AutoTokenizer
    from trl.chat_template_utils import is_chat_template_prefix_preserving, parse_response, supports_tool_calling

    from rlr.models.tiny import attach_tool_parser

    tok = AutoTokenizer.from_pretrained(micro_model)
    assert getattr(tok, "response_template", None) is None  # not saved: runs without tools decode as before
    assert attach_tool_parser(tok)  # what train-rl does when rl.tools / rl.environment is set
    plain = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "1+2"},
             {"role": "assistant", "content": "3"}]
    assert tok.apply_chat_template(plain, tokenize=False) == tok.apply_chat_template(
        plain, tokenize=False, chat_template=OLD_CHATML)
    assert supports_tool_calling(tok) and is_chat_template_prefix_preserving(tok)  # what GRPOTrainer checks

    call = {"type": "function", "function": {"name": "calculator", "arguments": {"expression": "12*34"}}}
    conversation = [{"role": "user", "content": "What is 12*34?"},
                    {"role": "assistant", "content": "<think>big</think>", "tool_calls": [call]},
                    {"role": "tool", "name": "calculator", "content": "408"},
                    {"role": "assistant", "content": "\\boxed{408}"}]
    text = tok.apply_chat_template(conversation, tools=[calculator], tokenize=False)
    assert text == ("<|im_start|>system\nTools: calculator(expression)<|im_end|>\n"
                    "<|im_start|>user\nWhat is 12*34?<|im_end|>\n"
                    '<|im_start|>assistant\n<think>big</think><tool_call>{"name": "calculator", "arguments": '
                    '{"expression": "12*34"}}</tool_call><|im_end|>\n'
                    "<|im_start|>user\n<tool_response>\n408\n</tool_response><|im_end|>\n"
                    "<|im_start|>assistant\n\\boxed{408}<|im_end|>\n")

    # Parse the assistant turn back with TRL's own parser, given the prompt as its prefix (as the tool loop does).
    prefix = tok.apply_chat_template(conversation[:1], tools=[calculator], add_generation_prompt=True,
                                     return_dict=False)
    full = tok.apply_chat_template(conversation[:2], tools=[calculator], return_dict=False)
    assert full[:len(prefix)] == prefix
    parsed = parse_response(tok, full[len(prefix):], prefix=prefix, tools=[calculator])
    assert parsed == {"role": "assistant", "content": "<think>big</think>", "tool_calls": [call]}
    answer = tok("\\boxed{408}<|im_end|>")["input_ids"]
    assert parse_response(tok, answer, prefix=prefix) == {"role": "assistant", "content": "\\boxed{408}"}
    broken = tok('<tool_call>{"name": "calc</tool_call><|im_end|>')["input_ids"]  # malformed: kept as text
    assert "tool_calls" not in parse_response(tok, broken, prefix=prefix)


def test_context_length_does_not_change_the_weights(tmp_path):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from rlr.models.tiny import build_tiny_model

    short = load_file(build_tiny_model(tmp_path / "a", size="micro") / "model.safetensors")
    long_dir = build_tiny_model(tmp_path / "b", size="micro", max_positions=1024)
    assert all(torch.equal(short[k], v) for k, v in load_file(long_dir / "model.safetensors").items())
    assert AutoTokenizer.from_pretrained(long_dir).model_max_length == 1024
