"""How a question becomes a prompt: one definition shared by prepare-data (training rows) and evaluate (benchmarks).

Train and eval prompts must match token for token: a model trained to put its answer in `\\boxed{}` under the R1
system prompt and evaluated without it measures the template, not the training. So both stages call
`render_prompt` with the same `template:` section.

The system prompt says how to reason (R1's `<think>` protocol), the answer-format instruction (appended to the user
turn, as DeepSeek-R1 and Qwen2.5-Math recommend) says where the final answer goes, which is what the reward's
extractor looks for.
"""

from __future__ import annotations

import difflib
from typing import Any

from rlr.config.schema import TemplateSection
from rlr.errors import UserError

SYSTEM_PROMPTS: dict[str, str | None] = {
    # DeepSeek-R1 style: reasoning in <think> tags, then the answer in plain view.
    "r1_think": (
        "You are a helpful assistant. You first think about the reasoning process step by step inside "
        "<think> </think> tags, then give the user the final answer after </think>."
    ),
    # The R1-Zero prompt of the DeepSeek-R1 paper (Table 1), verbatim but for the trailing "User: ..." turn.
    "r1_zero": (
        "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The "
        "assistant first thinks about the reasoning process in the mind and then provides the user with the answer. "
        "The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, "
        "respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>."
    ),
    "plain": "You are a helpful assistant.",
    "none": None,
}

ANSWER_FORMATS: dict[str, str | None] = {
    "boxed": "Put your final answer within \\boxed{}.",
    "after_think": "Give only the final answer after </think>.",
    "answer_tag": "Give the final answer inside <answer> </answer> tags.",
    "code": "Answer with your code in a ```python block.",
    "none": None,
}


def system_prompt(template: TemplateSection) -> str | None:
    """The system prompt text: a named one, a literal one, or None.

    A value with no whitespace that is not a known name is far more likely a typo (`r1_thnik`) than a one-word
    literal prompt, so it is refused with a suggestion instead of being sent to the model verbatim.
    """
    value = template.system
    if value is None or value in ("", "none"):
        return None
    if value in SYSTEM_PROMPTS:
        return SYSTEM_PROMPTS[value]
    if not any(ch.isspace() for ch in value.strip()):
        close = difflib.get_close_matches(value, list(SYSTEM_PROMPTS), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UserError(f"template.system: unknown system prompt '{value}'{hint} (named: {', '.join(SYSTEM_PROMPTS)}; "
                        "a literal prompt must be a sentence)")
    return value


def user_content(question: str, template: TemplateSection) -> str:
    """The user turn: the question, then the answer-format instruction on its own line."""
    instruction = ANSWER_FORMATS[template.answer_format]
    return f"{question}\n{instruction}" if instruction else question


def render_prompt(question: str, template: TemplateSection,
                  messages: list[dict[str, str]] | None = None) -> list[dict[str, str]] | str:
    """Chat messages (`template.chat`: the tokenizer's chat template renders them later) or a plain string.

    The plain-text form follows the R1-Zero paper's layout ("...system... User: q Assistant:") so a base model
    without a chat template sees the same protocol. `messages`: the row's own conversation (a conversational
    `prompt` column), used instead of `question`; see `render_messages`.
    """
    if messages:
        return render_messages(messages, template)
    system = system_prompt(template)
    content = user_content(question, template)
    if template.chat:
        messages = [{"role": "system", "content": system}] if system else []
        return [*messages, {"role": "user", "content": content}]
    if system is None:
        return content
    return f"{system}\nUser: {content}\nAssistant:"


def render_messages(messages: list[dict[str, str]], template: TemplateSection) -> list[dict[str, str]] | str:
    """A conversational prompt: its own turns (system, few-shot user/assistant) kept in order; the template adds
    its system prompt only where the data has none, and the answer-format instruction to the last user turn, so
    the answer lands where the reward reads it (`template: {system: none, answer_format: none}` keeps the
    conversation verbatim)."""
    turns = [dict(m) for m in messages]
    system = system_prompt(template)
    if system and not any(m["role"] == "system" for m in turns):
        turns.insert(0, {"role": "system", "content": system})
    turns[-1] = {"role": "user", "content": user_content(turns[-1]["content"], template)}
    if template.chat:
        return turns
    if len(turns) == 1:
        return turns[0]["content"]
    speaker = {"user": "User: ", "assistant": "Assistant: ", "system": ""}
    return "\n".join(speaker[m["role"]] + m["content"] for m in turns) + "\nAssistant:"


def chat_template_inserts_think(tokenizer: Any) -> bool:
    """True when the tokenizer's generation prompt already opens `<think>` (Qwen3, DeepSeek-R1 distills).

    Completions then start inside the reasoning and never contain `<think>`: a format reward that requires it
    stays at zero. One definition, shared with the reward doctor.
    """
    from rlr.rewards.doctor import chat_template_inserts_think as inserts_think

    return inserts_think(tokenizer)
