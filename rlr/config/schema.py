"""The typed schema of an rlr experiment file.

Every rlr-owned key is a dataclass field with a `help` string; `rlr validate` and the errors it raises are
generated from these. The TRL trainer sections (`sft.trainer`, `rl.trainer`) are free-form dicts here on
purpose: they are checked against TRL's own config classes (see `rlr.config.trainer`), so every TRL field works
without rlr re-declaring it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

# A section's `rules()` yields `(field, message)` for each rule across its fields that the values break; it runs
# once, on the built config (rlr.config.coerce.check_rules), so each rule is written in one place.
Rules = Iterator[tuple[str, str]]


def doc(help: str, default: Any = None, factory: Any = None) -> Any:
    """A dataclass field with a help string (the docstring of that key)."""
    if factory is not None:
        return field(default_factory=factory, metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class RunSection:
    name: str = doc("Run name; outputs go to <output_dir>/<name>/<stage>/.", "")
    output_dir: str = doc("Directory that holds all runs (relative to the current directory).", "runs")
    seed: int = doc("Seed for data generation, sampling and training.", 42)

    def rules(self) -> Rules:
        if not self.name:
            yield "name", "required; set a name for this run, e.g. run: {name: my-experiment}"
        elif any(c in self.name for c in "/\\\0") or self.name.startswith(".") or self.name.strip() != self.name:
            # A name is one directory under run.output_dir: `../x` or `/x` would write outside it.
            yield "name", (f"{self.name!r} is not a plain directory name (no '/', '\\', '..' or leading '.'); name "
                           "the run e.g. my-experiment, and choose the parent with run.output_dir")


@dataclass
class ModelSection:
    name_or_path: str = doc("Hub model id (e.g. Qwen/Qwen2.5-0.5B-Instruct) or a local model directory.", "")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = doc(
        "Weights dtype. auto: bfloat16 on a GPU that supports it, float32 on CPU.", "auto"
    )
    revision: str | None = doc("Hub revision (branch, tag or commit) to pin the model to.")
    trust_remote_code: bool = doc("Allow custom modelling code from the hub repo.", False)
    attn_implementation: str | None = doc("eager, sdpa, flash_attention_2 ...; default: transformers' choice.")
    chat_template: str | None = doc("Override the tokenizer's chat template: a Jinja string or a .jinja file path.")
    load_in_4bit: bool = doc("QLoRA: load the base model in 4-bit (bitsandbytes, CUDA only).", False)

    def rules(self) -> Rules:
        if not self.name_or_path:
            yield "name_or_path", "required; a hub model id or a local model directory"


@dataclass
class LoraSection:
    r: int = doc("LoRA rank; higher adapts more and costs more memory.", 16)
    alpha: int = doc("LoRA scaling numerator (effective scale alpha/r).", 32)
    dropout: float = doc("Dropout on the LoRA path.", 0.05)
    target_modules: list[str] | str = doc("Module names to adapt, or 'all-linear'.", "all-linear")
    use_rslora: bool = doc("Rank-stabilised scaling alpha/sqrt(r).", False)


@dataclass
class TemplateSection:
    system: str | None = doc("Named system prompt (r1_think, r1_zero, plain, none) or a literal one.", "r1_think")
    answer_format: Literal["boxed", "after_think", "answer_tag", "code", "none"] = doc(
        "Instruction appended to each question saying where the final answer goes.", "boxed"
    )
    chat: bool = doc("true: prompts are chat messages (uses the tokenizer's chat template); false: plain text.", True)


@dataclass
class SourceSpec:
    source: str = doc("hf:<dataset id>, a local .jsonl/.json/.parquet/.csv file, "
                      "task:<arithmetic|countdown|pyfunc>, gym:<reasoning-gym env>, or env:<shipped environment> "
                      "(its own prompts).", "")
    config: str | None = doc("Dataset config name (hub datasets), e.g. 'main' for openai/gsm8k.")
    split: str = doc("Dataset split to read.", "train")
    question: str = doc("Column holding the question text, or a conversational prompt (a list of {role, content} "
                        "messages, TRL's format).", "question")
    answer: str = doc("Column holding the ground-truth answer.", "answer")
    solution: str | None = doc("Column holding a worked solution (SFT target); default: none.")
    tests: str | None = doc("Column holding test statements (a list of `assert ...` strings, or a JSON list) for "
                            "code_tests; kept in meta.tests, and the task defaults to `code`. Default: none.")
    show_tests: int = doc("Append the first N tests to the question (`Your code should pass these tests:`), as MBPP "
                          "prompts do: its text does not name the function. The reward still runs them all.", 0)
    answer_format: Literal["auto", "gsm8k", "boxed", "plain"] = doc(
        "How to pull the final answer out of the answer column: gsm8k '#### 42', boxed '\\boxed{42}', plain.", "auto"
    )
    task: str | None = doc("Verifier for these rows (math, exact, numeric, arithmetic, countdown, gym:<name>); "
                           "default: math for files and hub data, the task itself for task:/gym: sources.")
    rows: int | None = doc("Rows to take (procedural sources: rows to generate). Default: all / 1000 for tasks.")
    weight: float | None = doc("Mixture weight relative to the other sources (used with data.train_rows).")
    seed: int | None = doc("Seed for this source; default run.seed (eval sources: run.seed + 1).")
    args: dict[str, Any] = doc("Extra arguments: procedural task knobs, reasoning-gym kwargs, or load_dataset kwargs.",
                               factory=dict)


@dataclass
class DecontaminationSection:
    enabled: bool = doc("Drop train rows whose n-grams overlap the eval split or the named benchmark files.", True)
    ngram: int = doc("n-gram length (words) used for the overlap test.", 13)
    benchmarks: list[str] = doc("Shipped benchmark names (gsm8k, math500, aime24 ...) or files (jsonl/json/parquet/"
                                "csv) whose questions must not leak into train.", factory=list)


@dataclass
class DifficultySection:
    enabled: bool = doc("Keep only prompts the starting model solves at a rate inside [min_pass, max_pass].", False)
    samples: int = doc("Completions sampled per prompt to estimate its pass rate.", 8)
    min_pass: float = doc("Drop prompts solved less often than this (never solved: no signal).", 0.0625)
    max_pass: float = doc("Drop prompts solved more often than this (always solved: no signal).", 0.9375)
    max_new_tokens: int = doc("Generation budget per sample.", 256)
    temperature: float = doc("Sampling temperature for the estimate.", 1.0)


@dataclass
class DataSection:
    train: list[SourceSpec] = doc("Training sources (one or a list: a mixture).", factory=list)
    eval: list[SourceSpec] = doc("Evaluation sources; default: none (eval.benchmarks may name others).", factory=list)
    train_rows: int | None = doc("Total training rows of a weighted mixture.")
    eval_holdout: int | None = doc("Carve this many rows out of train as the eval split when data.eval is empty.")
    max_prompt_tokens: int | None = doc("Drop rows whose rendered prompt is longer (model's tokenizer).")
    dedup: Literal["none", "exact", "normalized"] = doc("De-duplicate questions (normalized: case/space/punct).",
                                                       "normalized")
    decontaminate: DecontaminationSection = doc("Train/eval overlap filter.", factory=DecontaminationSection)
    difficulty: DifficultySection = doc("Pass-rate filter with the starting model.", factory=DifficultySection)
    num_proc: int | None = doc("Worker processes for datasets map/filter on large sources.")

    def rules(self) -> Rules:
        for section, sources in (("train", self.train), ("eval", self.eval)):
            for src in sources:
                if not src.source:
                    yield section, "each source needs source: (hf:<id>, a file, task:<name> or gym:<name>)"


@dataclass
class RewardSpec:
    name: str = doc("Built-in reward name (see `rlr rewards list`), module.path:function or file.py:function.", "")
    weight: float = doc("Weight of this reward in the total.", 1.0)
    args: dict[str, Any] = doc("Arguments of a parameterized reward.", factory=dict)
    timeout_s: float | None = doc("Time limit of one call (one batch) during training: past it the batch scores 0 "
                                  "and is logged; 3 in a row stop the run. null: 120 s.", None)


@dataclass
class StopAtSection:
    metric: Literal["sampled_accuracy", "greedy_accuracy"] = doc(
        "Held-out metric, computed by rlr evaluate's code on the run's eval split with eval's sampling settings.",
        "sampled_accuracy")
    value: float | None = doc("Stop SFT once the metric reaches this (0-1); null: off, train sft.trainer.max_steps.")
    every: int = doc("Check every this many optimiser steps.", 25)
    start: int = doc("First step at which to check (earlier checks would only cost time).", 0)
    problems: int = doc("Eval-split problems per check (the first N).", 200)
    samples: int = doc("Completions per problem per check (sampled_accuracy).", 2)


@dataclass
class SFTSection:
    use_lora: bool = doc("Train a LoRA adapter (lora section); false: full-parameter (needed from random init).", True)
    init_from: str | None = doc("Start from: base (model.name_or_path) or a model/adapter path.", None)
    completion_only_loss: bool = doc("Loss on the completion only; false: on the whole sequence.", True)
    train_on_tool_replies: bool = doc("Tool-use traces (meta.solution_turns): the tool replies count in the loss "
                                      "too; false: only the model's own turns, as RL trains them.", False)
    stop_at: StopAtSection = doc("Stop on a held-out metric instead of a step count (max_steps stays the cap).",
                                 factory=StopAtSection)
    trainer: dict[str, Any] = doc("Any trl.SFTConfig field (learning_rate, max_steps, max_length, packing ...).",
                                  factory=dict)


@dataclass
class DynamicSamplingSection:
    enabled: bool = doc("DAPO dynamic sampling: drop groups whose rewards are all equal and resample.", False)
    max_rounds: int = doc("Extra generation rounds allowed per batch before training on what was kept.", 3)


@dataclass
class AlarmSpec:
    """One alarm: it trips after `patience` consecutive logged steps past `threshold`."""

    enabled: bool = doc("Watch this signal.", True)
    mode: Literal["warn", "stop"] = doc("warn: print and carry on; stop: save a checkpoint and exit 1.", "stop")
    threshold: float = doc("The value past which a step counts (see each alarm).", 0.0)
    patience: int = doc("Consecutive logged steps past the threshold before the alarm trips.", 10)


@dataclass
class NoSignalAlarm(AlarmSpec):
    threshold: float = doc("frac_reward_zero_std at or above this: (almost) every group's rewards are equal, so "
                           "the advantages are zero and nothing is learned.", 0.95)
    patience: int = doc("Consecutive logged steps past the threshold before the alarm trips.", 20)


@dataclass
class ClippedAlarm(AlarmSpec):
    mode: Literal["warn", "stop"] = doc("warn: print and carry on; stop: save a checkpoint and exit 1.", "warn")
    threshold: float = doc("completions/clipped_ratio at or above this: completions run to max_completion_length "
                           "without an EOS.", 0.8)
    patience: int = doc("Consecutive logged steps past the threshold before the alarm trips.", 20)


@dataclass
class EntropyAlarm(AlarmSpec):
    threshold: float = doc("Mean token entropy (nats) below this: the policy has become (nearly) deterministic "
                           "and stops exploring.", 0.01)
    patience: int = doc("Consecutive logged steps past the threshold before the alarm trips.", 10)


@dataclass
class KLAlarm(AlarmSpec):
    threshold: float = doc("kl to the reference above this (logged when beta > 0): the policy has run away from "
                           "the reference.", 1.0)
    patience: int = doc("Consecutive logged steps past the threshold before the alarm trips.", 5)


@dataclass
class RewardHackingAlarm(AlarmSpec):
    mode: Literal["warn", "stop"] = doc("warn: print and carry on; stop: save a checkpoint and exit 1.", "warn")
    threshold: float = doc("Rise of a non-correctness reward's mean (last `patience` steps vs the first "
                           "`patience`) while the correctness reward rose by less than `flat`.", 0.3)
    patience: int = doc("Window in logged steps: the first and the latest this many steps are compared.", 25)
    flat: float = doc("The correctness reward counts as flat when it rose by less than this.", 0.02)


@dataclass
class NanAlarm(AlarmSpec):
    threshold: float = doc("Unused: any NaN/inf loss or grad_norm counts.", 0.0)
    patience: int = doc("Consecutive logged steps with a NaN/inf loss or grad_norm.", 1)


@dataclass
class AlarmsSection:
    no_signal: NoSignalAlarm = doc("No learning signal: rewards equal within every group.", factory=NoSignalAlarm)
    clipped: ClippedAlarm = doc("Completions at the length cap.", factory=ClippedAlarm)
    entropy_collapse: EntropyAlarm = doc("Entropy collapse.", factory=EntropyAlarm)
    kl_blowup: KLAlarm = doc("KL to the reference blowing up (only when beta > 0).", factory=KLAlarm)
    reward_hacking: RewardHackingAlarm = doc("A non-correctness reward rising while the correctness reward stays "
                                             "flat.", factory=RewardHackingAlarm)
    nan: NanAlarm = doc("NaN/inf loss or gradient norm (no checkpoint of a poisoned model is saved; rlr's NaN "
                        "guard stops the run in either mode).", factory=NanAlarm)


@dataclass
class RLSection:
    algorithm: str = doc("Named bundle of trainer settings (presets/algorithms/<name>.yaml).", "grpo")
    trainer_type: Literal["grpo", "rloo"] = doc("TRL trainer class; set by the algorithm bundle.", "grpo")
    init_from: str | None = doc("Start from: sft (this run's SFT output), base, or a path. "
                                "Default: sft when that stage is complete, else base.")
    use_lora: bool = doc("Train a LoRA adapter (lora section); false: full-parameter.", True)
    dynamic_sampling: DynamicSamplingSection = doc("DAPO dynamic sampling.", factory=DynamicSamplingSection)
    updates_per_generation: int = doc("Optimiser steps per generation batch (DAPO 16, GSPO 4): each batch is split "
                                      "into that many mini-batches, so from the second on the policy has moved and "
                                      "the clip range / IS weights act; 1 is on-policy (ratio 1, clipping idle). "
                                      "Sets trl's steps_per_generation = this x gradient_accumulation_steps.", 1)
    whiten_advantages: bool = doc("Normalise the advantages over the whole batch after TRL computed them "
                                  "(REINFORCE++-baseline: (r - group mean) / batch std of that); on in reinforce_pp.",
                                  False)
    overlong_buffer: float | None = doc("DAPO overlong reward shaping: linear penalty over the last N tokens before "
                                        "max_completion_length (a value < 1 is a fraction of it); null: off.")
    sample_log_every: int = doc("Write a table of prompts/completions/rewards to rl/samples.jsonl every N steps.", 10)
    tools: list[str] = doc("Tools the model may call during rollouts (TRL's tool loop; their replies are masked from "
                           "the loss): calculator, python (runs in rlr's sandbox), or file.py:function / "
                           "module:function (type hints + docstring become the schema). rl.trainer."
                           "max_tool_calling_iterations caps the calls per rollout.", factory=list)
    environment: str | None = doc("Multi-turn environment (TRL's environment_factory): a shipped name (guess_number) "
                                  "or file.py:Class with reset(**row), tool methods and an optional get_reward().")
    tool_timeout_s: float = doc("Time limit of one tool call; past it the call replies an error to the model and the "
                                "rollout goes on (the python tool's program is killed).", 10.0)
    alarms: AlarmsSection = doc("Watch TRL's metrics for a run going wrong; warn or stop.", factory=AlarmsSection)
    trainer: dict[str, Any] = doc("Any trl.GRPOConfig / RLOOConfig field; overrides the algorithm bundle.",
                                  factory=dict)


@dataclass
class EvalSection:
    benchmarks: list[str] = doc("What to evaluate on: 'eval' (this run's eval split), shipped benchmark names "
                                "(gsm8k, math500, aime24 ...) or local files.", factory=lambda: ["eval"])
    samples: int = doc("Completions per problem (n).", 1)
    k: list[int] = doc("k values for pass@k and maj@k (each <= samples).", factory=lambda: [1])
    temperature: float = doc("Sampling temperature.", 0.6)
    top_p: float = doc("Nucleus sampling threshold.", 0.95)
    max_new_tokens: int = doc("Generation budget per completion.", 512)
    greedy: bool = doc("Also score one greedy completion per problem.", False)
    batch_size: int = doc("Prompts per generate() call.", 32)
    limit: int | None = doc("Evaluate only the first N problems of each benchmark.")
    backend: Literal["hf", "vllm"] = doc("hf: transformers generate; vllm: vLLM (GPU, optional extra).", "hf")

    def rules(self) -> Rules:
        for k in self.k:
            if k < 1 or k > self.samples:
                yield "k", f"k={k} must be between 1 and eval.samples ({self.samples})"


@dataclass
class ExportSection:
    from_stage: Literal["auto", "rl", "sft"] = doc("Stage to export; auto: rl if complete, else sft.", "auto")
    merge_lora: bool = doc("Merge LoRA adapters into the base weights; false: export the adapter alone.", True)
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = doc("dtype of the saved weights.", "auto")
    max_shard_size: str = doc("Shard safetensors above this size.", "2GB")


@dataclass
class PipelineSection:
    stages: list[Literal["data", "sft", "eval_before", "rl", "eval_after", "export"]] = doc(
        "Stages `rlr pipeline` runs, in this order; completed ones are skipped.",
        factory=lambda: ["data", "sft", "eval_before", "rl", "eval_after", "export"],
    )
    rl_band: list[float] | None = doc("[low, high]: the sampled accuracy of the model before RL must lie in this band "
                                      "(RL from too weak or too strong a start teaches nothing); the pipeline stops "
                                      "and names the band otherwise.")

    def rules(self) -> Rules:
        band = self.rl_band
        if band is not None and (len(band) != 2 or not 0 <= band[0] < band[1] <= 1):
            yield "rl_band", f"must be [low, high] with 0 <= low < high <= 1; got {band}"


@dataclass
class EstimateSection:
    model_config: dict[str, Any] = doc("config.json keys of a model that is neither local nor cached (hidden_size, "
                                       "num_hidden_layers, intermediate_size, num_attention_heads, vocab_size, "
                                       "num_key_value_heads ...); they also override the file's.", factory=dict)
    memory: str | None = doc("Device memory `rlr estimate` checks against (e.g. 24GB); --memory overrides.")
    tflops: float | None = doc("Achieved device TFLOP/s for the time estimate; default: measured / a table.")
    bandwidth_gbs: float | None = doc("Achieved device memory bandwidth in GB/s (prices generation).")


@dataclass
class Config:
    run: RunSection = doc("Run name, output directory and seed.", factory=RunSection)
    model: ModelSection = doc("Base model.", factory=ModelSection)
    lora: LoraSection = doc("LoRA hyperparameters (used when sft/rl use_lora is true).", factory=LoraSection)
    template: TemplateSection = doc("How a question becomes a prompt.", factory=TemplateSection)
    data: DataSection = doc("Training and evaluation data.", factory=DataSection)
    rewards: list[RewardSpec] = doc("Rewards summed with their weights during RL.", factory=list)
    sft: SFTSection = doc("Supervised fine-tuning (cold start / distillation).", factory=SFTSection)
    rl: RLSection = doc("Reinforcement learning.", factory=RLSection)
    eval: EvalSection = doc("Evaluation.", factory=EvalSection)
    export: ExportSection = doc("Export of a standalone model.", factory=ExportSection)
    pipeline: PipelineSection = doc("Checks made by `rlr pipeline` between stages.", factory=PipelineSection)
    estimate: EstimateSection = doc("Inputs of `rlr estimate` (memory/time before launch).", factory=EstimateSection)
