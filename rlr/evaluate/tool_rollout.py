"""Tool-calling episodes for `rlr evaluate`: a preset with `rl.tools` / `rl.environment` is evaluated as it trains.

TRL's GRPOTrainer runs a tool loop during rollouts (`_tool_call_loop`); evaluating such a model with plain one-turn
completions would measure another task. So the rollouts here follow TRL's loop step for step, with the tools and
environment built by the same rlr function training uses (`rlr.tools.agentic.trainer_kwargs`: same guards, same time
limits, same response parser): render the prompt with the tools listed, generate, parse the turn with
`parse_response`, run each tool call (an exception or a guard's time limit becomes an `{"error": ...}` reply and
counts as a tool error, as in TRL's `tools/failure_frequency`), append the tool turns' tokens to the context without
re-tokenizing, generate again, up to `rl.trainer.max_tool_calling_iterations` rounds (TRL: unlimited). The episode's
token budget is `eval.max_new_tokens`, counted like TRL's `max_completion_length` (model and tool tokens together; a
tool reply that would not fit ends the episode, rolled back). Model calls are batched over the episodes still active.

The text the rewards score is what TRL hands them, the assistant turns' contents joined (`completion_text`); the
transcript is TRL's completion messages (assistant and tool turns), as `rlr train-rl` logs it. Without tools or an
environment none of this runs: the evaluate stage keeps its plain generator.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rlr.errors import UserError
from rlr.evaluate.generate import Completion, GenerationResult, GenerationSettings, split_completion
from rlr.interrupts import raise_if_interrupted

# (contexts, token budget per context) -> the generated ids of each, up to and including its eos
TurnGenerator = Callable[[list[list[int]], list[int], GenerationSettings], list[list[int]]]


@dataclass
class ToolSetup:
    """What every episode of a preset shares: its standalone tools, its environment class, the loop's bounds."""

    tools: list[Callable[..., Any]]
    environment_factory: type | None
    max_iterations: int
    chat_template: str | None = None  # TRL's prefix-preserving replacement, when the model's own is not
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)


def tool_setup(loaded: Any, tokenizer: Any) -> ToolSetup | None:
    """The preset's tools as training builds them, or None for a preset without rl.tools / rl.environment."""
    from rlr.envs.rollout_tools import trainer_kwargs

    kwargs = trainer_kwargs(loaded, tokenizer)  # also attaches the tiny model's parser and checks the template
    if not kwargs:
        return None
    from trl.chat_template_utils import (
        add_response_schema,
        get_training_chat_template,
        is_chat_template_prefix_preserving,
    )

    if getattr(tokenizer, "response_template", None) is None and getattr(tokenizer, "response_schema", None) is None:
        try:
            add_response_schema(tokenizer)  # what GRPOTrainer does for a model family it knows (Qwen, Llama ...)
        except ValueError:
            raise UserError("rl.tools: TRL cannot read tool calls back from this model's chat template (no response "
                            "template for it); use a model family TRL knows (Qwen, Llama ...) or the tiny model "
                            "from `rlr tiny-model`") from None
    trainer = loaded.cfg.rl.trainer
    limit = trainer.get("max_tool_calling_iterations")
    return ToolSetup(
        tools=list(kwargs.get("tools") or []), environment_factory=kwargs.get("environment_factory"),
        max_iterations=sys.maxsize if limit is None else int(limit),
        chat_template=None if is_chat_template_prefix_preserving(tokenizer) else get_training_chat_template(tokenizer),
        chat_template_kwargs=dict(trainer.get("chat_template_kwargs") or {}))


def tool_identity(cfg: Any) -> dict[str, Any]:
    """The evaluation identity's tool part, from the config alone ({} without tools: the identity is unchanged)."""
    from rlr.envs.rollout_tools import env_of_sources

    environment = cfg.rl.environment or env_of_sources(cfg)
    if not cfg.rl.tools and not environment:
        return {}
    return {"tool_rollouts": {"tools": list(cfg.rl.tools), "environment": environment,
                              "tool_timeout_s": cfg.rl.tool_timeout_s,
                              "max_tool_calling_iterations": cfg.rl.trainer.get("max_tool_calling_iterations")}}


@dataclass
class _Episode:
    row: dict[str, Any]
    prompt_ids: list[int]
    tools: list[Callable[..., Any]]
    environment: Any
    completion_ids: list[int] = field(default_factory=list)  # model and tool tokens, as TRL concatenates them
    messages: list[dict[str, Any]] = field(default_factory=list)
    model_tokens: int = 0
    truncated: bool = False
    tool_calls: int = 0
    tool_errors: int = 0
    turns: int = 0

    def pending_calls(self) -> list[dict[str, Any]]:
        last = self.messages[-1] if self.messages else {}
        return list(last.get("tool_calls") or [])


def _call_tools(episode: _Episode, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """TRL's tool step: every call answered, an exception as `{"error": ...}` (counted), never raised."""
    by_name = {getattr(t, "__name__", ""): t for t in episode.tools}
    replies = []
    for call in calls:
        episode.tool_calls += 1
        if isinstance(call, dict) and call.get("type") == "function":
            function = call["function"]
            name = function["name"]
            try:
                if name not in by_name:
                    raise ValueError(f"Tool {name} not found.")
                result: Any = by_name[name](**function["arguments"])
            except Exception as e:  # the guard already turned hangs and SystemExit into exceptions
                episode.tool_errors += 1
                result = {"error": str(e)}
        else:
            episode.tool_errors += 1
            name = call.get("name", "unknown") if isinstance(call, dict) else "unknown"
            result = {"error": f"Unsupported tool call type: {call.get('type') if isinstance(call, dict) else call}"}
        replies.append({"role": "tool", "name": name, "content": result if isinstance(result, list) else str(result)})
    return replies


class ToolRollouts:
    """Runs episodes for rows of a benchmark; `turn_generator` is the model (batched HF generate, or a script)."""

    def __init__(self, tokenizer: Any, setup: ToolSetup, turn_generator: TurnGenerator, context_limit: int,
                 eos: set[int] | None = None) -> None:
        from rlr.evaluate.generate import eos_token_ids

        self.tokenizer, self.setup, self.turn_generator = tokenizer, setup, turn_generator
        self.context_limit = context_limit
        self.eos = eos or eos_token_ids(tokenizer)  # the model's generation config may add ids (Qwen lists several)

    def _render(self, messages: list[dict[str, Any]], tools: list[Any], generation_prompt: bool) -> list[int]:
        kwargs = {"chat_template": self.setup.chat_template} if self.setup.chat_template else {}
        text = self.tokenizer.apply_chat_template(messages, tools=tools or None, tokenize=False,
                                                  add_generation_prompt=generation_prompt,
                                                  **kwargs, **self.setup.chat_template_kwargs)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _start(self, row: dict[str, Any]) -> _Episode:
        """A fresh environment reset on the row (its first message, if any, is appended to the last prompt turn)."""
        prompt = [dict(m) for m in row["prompt"]]
        environment, methods = None, []
        if self.setup.environment_factory is not None:
            from rlr.envs.registry import tool_methods

            environment = self.setup.environment_factory()
            try:
                observation = environment.reset(**row)
            except Exception as e:
                raise UserError(f"rl.environment: reset(**row) raised {type(e).__name__}: {e}; TRL calls it with "
                                "every data row, so training would stop on it too") from None
            if isinstance(observation, str):
                prompt[-1]["content"] = str(prompt[-1]["content"]) + observation
            methods = [getattr(environment, n) for n in tool_methods(type(environment))]
        tools = self.setup.tools + methods
        return _Episode(row, self._render(prompt, tools, True), tools, environment)

    def _parse(self, ids: list[int], prefix: list[int], tools: list[Any]) -> dict[str, Any]:
        from trl.chat_template_utils import parse_response

        return parse_response(self.tokenizer, ids, prefix=prefix, tools=tools)

    def _tool_suffix(self, replies: list[dict[str, Any]]) -> list[int]:
        """TRL's `_get_tool_suffix_ids`: the tokens the template puts after an assistant turn's eos for `replies`."""
        call = {"role": "assistant", "content": "",
                "tool_calls": [{"type": "function", "function": {"name": replies[0]["name"], "arguments": {}}}]}
        dummy = [{"role": "user", "content": "dummy"}, call]
        prefix, full = self._render(dummy, [], False), self._render(dummy + replies, [], True)
        eos = [i for i, t in enumerate(prefix) if t == self.tokenizer.eos_token_id]
        prefix = prefix[:eos[-1] + 1] if eos else prefix
        if full[:len(prefix)] != prefix:
            raise UserError("the chat template renders tool replies in a way that changes the turns before them; "
                            "set model.chat_template to a prefix-preserving template")
        return full[len(prefix):]

    def _generate(self, episodes: list[_Episode], contexts: list[list[int]], settings: GenerationSettings) -> None:
        """One model turn for each episode, appended to its transcript."""
        budgets = [settings.max_new_tokens - (len(c) - len(e.prompt_ids)) for e, c in zip(episodes, contexts,
                                                                                          strict=True)]
        outputs = self.turn_generator(contexts, budgets, settings)
        for episode, context, ids, budget in zip(episodes, contexts, outputs, budgets, strict=True):
            ids = list(ids[:budget])
            episode.turns += 1
            episode.model_tokens += len(ids)
            episode.truncated = not ids or ids[-1] not in self.eos
            episode.completion_ids = context[len(episode.prompt_ids):] + ids
            if ids or not episode.messages:  # TRL keeps an empty first turn, drops an empty post-tool one
                episode.messages.append(self._parse(ids, context, episode.tools))

    def run(self, rows: Sequence[dict[str, Any]], settings: GenerationSettings,
            on_done: Callable[[int], None] | None = None) -> list[_Episode]:
        """One episode per row (rows repeated for n samples), in row order."""
        episodes = [self._start(row) for row in rows]
        self._generate(episodes, [e.prompt_ids for e in episodes], settings)
        active = [e for e in episodes if e.pending_calls()]
        if on_done:
            on_done(len(episodes) - len(active))
        iteration = 0
        while active and iteration < self.setup.max_iterations:
            contexts, going = [], []
            for episode in active:
                before = len(episode.messages)
                episode.messages += _call_tools(episode, episode.pending_calls())
                context = episode.prompt_ids + episode.completion_ids + self._tool_suffix(episode.messages[before:])
                if len(context) - len(episode.prompt_ids) > settings.max_new_tokens or \
                        len(context) >= self.context_limit:
                    del episode.messages[before:]  # TRL rolls back replies that do not fit, and ends the episode
                    episode.truncated = True
                    continue
                contexts.append(context)
                going.append(episode)
            if going:
                self._generate(going, contexts, settings)
            iteration += 1
            still = [e for e in going if e.pending_calls()] if iteration < self.setup.max_iterations else []
            if on_done:
                on_done(len(active) - len(still))
            active = still
        return episodes


def episode_completion(episode: _Episode) -> Completion:
    """What the evaluate stage scores and stores for one episode."""
    from rlr.rewards.common import completion_text

    reward = None
    get_reward = getattr(episode.environment, "get_reward", None)
    if callable(get_reward):
        try:
            reward = float(get_reward())
        except Exception:  # noqa: BLE001 -- a broken reward leaves the episode unrated, not the evaluation stopped
            reward = None
    record: dict[str, Any] = {"transcript": episode.messages, "tool_calls": episode.tool_calls,
                              "tool_errors": episode.tool_errors, "turns": episode.turns}
    if episode.environment is not None:
        record["env_reward"] = reward
    return Completion(completion_text(episode.messages), episode.model_tokens, episode.truncated, episode=record)


def episode_metrics(completions: list[list[Completion]]) -> dict[str, Any]:
    """Per-benchmark means for results.json; `tool_error_rate` is errors per call (0 when nothing was called)."""
    records = [c.episode for group in completions for c in group if c.episode is not None]
    if not records:
        return {}
    calls, errors = sum(r["tool_calls"] for r in records), sum(r["tool_errors"] for r in records)
    metrics: dict[str, Any] = {"tool_calls_per_episode": calls / len(records),
                               "tool_error_rate": errors / calls if calls else 0.0,
                               "turns_per_episode": sum(r["turns"] for r in records) / len(records)}
    rewards = [r["env_reward"] for r in records if r.get("env_reward") is not None]
    if any("env_reward" in r for r in records):
        metrics["env_reward"] = sum(rewards) / len(rewards) if rewards else None
    return metrics


def hf_turns(hf: Any) -> TurnGenerator:
    """Batched transformers `generate` over token-id contexts (left-padded, sorted by length, like HFGenerator)."""

    def generate(contexts: list[list[int]], budgets: list[int], settings: GenerationSettings) -> list[list[int]]:
        import torch

        out: list[list[int]] = [[] for _ in contexts]
        order = sorted(range(len(contexts)), key=lambda i: len(contexts[i]))
        with torch.inference_mode():
            for start in range(0, len(order), settings.batch_size):
                raise_if_interrupted()
                idx = [i for i in order[start:start + settings.batch_size] if budgets[i] > 0]
                if not idx:
                    continue
                batch = hf.tokenizer.pad({"input_ids": [contexts[i] for i in idx]}, padding=True, return_tensors="pt")
                batch = {k: v.to(hf.device) for k, v in batch.items()}
                kwargs = {**hf.generate_kwargs(settings, 1), "max_new_tokens": max(budgets[i] for i in idx)}
                rows = hf.model.generate(**batch, **kwargs)[:, batch["input_ids"].shape[1]:].tolist()
                for i, ids in zip(idx, rows, strict=True):
                    kept, _, truncated = split_completion(ids, hf.eos)
                    out[i] = (kept if truncated else kept + [ids[len(kept)]])[:budgets[i]]
        return out

    return generate


class ToolRolloutGenerator:
    """The evaluate stage's generator for a preset with tools: `generate` takes the benchmark's rows, not prompts
    (an environment resets on the whole row), and returns completions whose `episode` holds the transcript."""

    backend = "hf"
    takes_rows = True

    def __init__(self, rollouts: ToolRollouts) -> None:
        self.rollouts = rollouts

    def generate(self, rows: Sequence[dict[str, Any]], settings: GenerationSettings, description: str = "generating",
                 show_progress: bool = True) -> GenerationResult:
        import torch

        from rlr.evaluate.generate import progress_bar

        n = 1 if settings.greedy else settings.n
        torch.manual_seed(settings.seed)
        progress = progress_bar() if show_progress else None
        task = progress.add_task(description, total=len(rows) * n, pps=0.0, tps=0.0) if progress else None
        t0 = time.perf_counter()
        if progress:
            progress.start()
        try:
            episodes = self.rollouts.run([row for row in rows for _ in range(n)], replace(settings, n=1),
                                         (lambda k: progress.update(task, advance=k)) if progress else None)
        finally:
            if progress:
                progress.stop()
        completions = [[episode_completion(e) for e in episodes[i * n:(i + 1) * n]] for i in range(len(rows))]
        texts = [self.rollouts.tokenizer.decode(episodes[i * n].prompt_ids) for i in range(len(rows))]
        return GenerationResult(completions, texts, time.perf_counter() - t0, sum(e.model_tokens for e in episodes),
                                extra=episode_metrics(completions))


def with_tools(generator: Any, loaded: Any) -> Any:
    """`generator` as is for a preset without tools; else one that runs its episodes with the preset's tools."""
    cfg = loaded.cfg
    if not tool_identity(cfg):
        return generator
    if getattr(generator, "backend", None) != "hf":
        raise UserError("eval.backend=vllm: tool-calling episodes (rl.tools / rl.environment) run on eval.backend=hf")
    setup = tool_setup(loaded, generator.tokenizer)
    if setup is None:
        return generator
    limit = int(getattr(generator.model.config, "max_position_embeddings", 0) or sys.maxsize)
    return ToolRolloutGenerator(ToolRollouts(generator.tokenizer, setup, hf_turns(generator), limit, generator.eos))

