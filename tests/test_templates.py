"""Prompt rendering: the one place train and eval prompts come from."""

from __future__ import annotations

import pytest

from rlr.config.schema import TemplateSection
from rlr.data.templates import ANSWER_FORMATS, SYSTEM_PROMPTS, chat_template_inserts_think, render_prompt
from rlr.errors import UserError


def test_named_prompts_exist():
    assert {"r1_think", "r1_zero", "plain", "none"} <= set(SYSTEM_PROMPTS)
    assert SYSTEM_PROMPTS["r1_zero"].startswith("A conversation between User and Assistant.")
    assert "<think>" in SYSTEM_PROMPTS["r1_think"] and SYSTEM_PROMPTS["none"] is None
    assert ANSWER_FORMATS["boxed"] == "Put your final answer within \\boxed{}."
    assert set(ANSWER_FORMATS) == {"boxed", "after_think", "answer_tag", "code", "none"}


def test_chat_prompt_has_system_and_instruction():
    messages = render_prompt("What is 2+2?", TemplateSection(system="r1_think", answer_format="boxed"))
    assert messages == [
        {"role": "system", "content": SYSTEM_PROMPTS["r1_think"]},
        {"role": "user", "content": "What is 2+2?\nPut your final answer within \\boxed{}."},
    ]


@pytest.mark.parametrize("system", ["none", None, ""])
def test_no_system_prompt_means_one_user_message(system):
    assert render_prompt("69+16=", TemplateSection(system=system, answer_format="none")) == [
        {"role": "user", "content": "69+16="}
    ]


def test_plain_text_prompts():
    assert render_prompt("69+16=", TemplateSection(system="none", answer_format="none", chat=False)) == "69+16="
    text = render_prompt("2+2?", TemplateSection(system="r1_zero", answer_format="answer_tag", chat=False))
    assert text.startswith(SYSTEM_PROMPTS["r1_zero"] + "\nUser: 2+2?\n" + ANSWER_FORMATS["answer_tag"])
    assert text.endswith("\nAssistant:")


def test_literal_system_prompt_and_typo():
    literal = "You are a careful mathematician."
    assert render_prompt("q", TemplateSection(system=literal, answer_format="none"))[0]["content"] == literal
    with pytest.raises(UserError, match="did you mean 'r1_think'"):
        render_prompt("q", TemplateSection(system="r1_thnik"))


class FakeTokenizer:
    """A tokenizer stand-in whose generation prompt is whatever the test says."""

    def __init__(self, generation_prompt: str):
        self.generation_prompt = generation_prompt

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False):
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        return text + (self.generation_prompt if add_generation_prompt else "")


@pytest.mark.parametrize(("generation_prompt", "expected"), [
    ("<|im_start|>assistant\n", False),
    ("<|im_start|>assistant\n<think>\n", True),  # Qwen3 / R1-distill style
    ("<|im_start|>assistant\n<think>\n\n</think>\n\n", False),  # thinking switched off: an empty closed block
])
def test_chat_template_inserts_think(generation_prompt, expected):
    assert chat_template_inserts_think(FakeTokenizer(generation_prompt)) is expected


def test_real_tokenizer_without_think(micro_model):
    from transformers import AutoTokenizer

    assert chat_template_inserts_think(AutoTokenizer.from_pretrained(micro_model)) is False


def test_the_code_answer_format_asks_for_a_python_block_and_evaluate_measures_it():
    from rlr.rewards.format import follows_answer_format

    template = TemplateSection(system="plain", answer_format="code")
    assert render_prompt("Write add(a, b).", template)[-1]["content"].endswith("in a ```python block.")
    assert follows_answer_format(["```python\nx = 1\n```", "x = 1"], ["", ""], "code") == [1.0, 0.0]
