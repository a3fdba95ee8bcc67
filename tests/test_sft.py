"""`rlr sft` end to end on the offline tiny models: learning, LoRA isolation, resume, Ctrl-C, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import TrainerCallback

from rlr.stage import StageOptions

REPO = Path(__file__).resolve().parent.parent


def sft_preset(make_preset, model: Path, name: str = "t", *, rows: int = 64, digits: int = 1, use_lora: bool = False,
               trainer: dict[str, Any] | None = None, **sections: Any) -> Path:
    """A preset with arithmetic traces (the SFT target) and a small, fast trainer section."""
    base = {"learning_rate": 1.0e-2, "max_steps": 2, "per_device_train_batch_size": 16, "max_length": 64,
            "save_steps": 1000}
    data = sections.pop("data", {"train": {"source": "task:arithmetic", "rows": rows, "args": {"digits": digits}}})
    return make_preset(model, name=name, data=data, sft={"use_lora": use_lora, "trainer": {**base, **(trainer or {})}},
                       lora={"r": 8, "alpha": 16, "dropout": 0.1, "target_modules": "all-linear"}, **sections)


def prepare(cli, preset: Path) -> None:
    r = cli("prepare-data", preset)
    assert r.code == 0, r.stderr


def sft_dir(tmp_path: Path, name: str = "t") -> Path:
    return tmp_path / "runs" / name / "sft"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def losses(stage: Path) -> list[float]:
    return [r["loss"] for r in read_jsonl(stage / "metrics.jsonl") if "loss" in r]


def test_full_parameter_sft_teaches_the_tiny_model(cli, make_preset, tmp_path, tiny_model):
    """From random init, 24 full-parameter steps (lr 2e-3, batch 64) must at least halve the loss (measured: 6.03 ->
    2.18 over the last 3 steps), and the output must be a standard HF model directory with the run's manifest."""
    preset = sft_preset(make_preset, tiny_model, rows=512, digits=2,
                        trainer={"learning_rate": 2.0e-3, "max_steps": 24, "per_device_train_batch_size": 64})
    prepare(cli, preset)
    r = cli("sft", preset, "--json")
    assert r.code == 0, r.stderr
    summary = json.loads(r.stdout)
    stage = sft_dir(tmp_path)
    curve = losses(stage)
    assert len(curve) == 24 and summary["steps"] == 24
    assert sum(curve[-3:]) / 3 < 0.5 * curve[0], curve
    assert summary["first_loss"] == curve[0] and summary["final_loss"] == curve[-1]
    assert summary["trainable_params"] > 900_000 and summary["tokens_per_s"] > 0

    manifest = json.loads((stage / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["outputs"]["steps"] == 24
    data_manifest = json.loads((stage.parent / "data" / "manifest.json").read_text())
    assert manifest["inputs"]["data"]["train.jsonl"] == data_manifest["outputs"]["train.jsonl"]["sha256"]
    assert manifest["inputs"]["init"]["base"] == str(tiny_model.resolve())

    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = Path(summary["model_dir"])
    assert model_dir == (stage / "model").resolve() and not (model_dir / "rlr_model.json").exists()
    tok = AutoTokenizer.from_pretrained(model_dir)
    assert tok.chat_template and tok.eos_token == "<|im_end|>"
    trained = AutoModelForCausalLM.from_pretrained(model_dir)
    start = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert not torch.equal(trained.model.embed_tokens.weight, start.model.embed_tokens.weight)


class Snapshot(TrainerCallback):
    """Parameters at train begin and end (TRL's PEFT test pattern: base untouched, adapter changed)."""

    def __init__(self) -> None:
        self.before: dict[str, torch.Tensor] = {}
        self.after: dict[str, torch.Tensor] = {}

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.before = {n: p.detach().clone() for n, p in model.named_parameters()}

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.after = {n: p.detach().clone() for n, p in model.named_parameters()}


def test_lora_changes_adapter_weights_and_leaves_base_bit_identical(make_preset, cli, tmp_path, micro_model):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from rlr.checks import load_experiment
    from rlr.models.references import ref_from_dir
    from rlr.train.sft import run_sft

    preset = sft_preset(make_preset, micro_model, use_lora=True, trainer={"max_steps": 3})
    prepare(cli, preset)
    snap = Snapshot()
    summary = run_sft(load_experiment(preset, stages=("sft",)), StageOptions(), callbacks=[snap])
    lora = [n for n in snap.before if "lora_" in n]
    base = [n for n in snap.before if "lora_" not in n]
    assert lora and base and summary["trainable_params"] == sum(snap.before[n].numel() for n in lora)
    assert all(not torch.equal(snap.before[n], snap.after[n]) for n in lora)
    assert all(torch.equal(snap.before[n], snap.after[n]) for n in base)

    model_dir = Path(summary["model_dir"])
    assert (model_dir / "adapter_config.json").is_file() and (model_dir / "tokenizer_config.json").is_file()
    ref = ref_from_dir(model_dir)  # what train-rl / evaluate / export read
    assert ref.base == str(micro_model.resolve()) and ref.adapters == [str(model_dir)]
    plain = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(micro_model), model_dir)  # no rlr needed
    assert any("lora_" in n for n, _ in plain.named_parameters())


class StopAfterSave(TrainerCallback):
    """Interrupts like a Ctrl-C right after the checkpoint of `step` is on disk."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def test_resume_ends_like_an_uninterrupted_run(make_preset, cli, tmp_path, micro_model):
    """Interrupted at step 3 (mid-epoch: 64 rows / batch 16) then --resume: same steps, same final loss (1e-5 rel.),
    so optimizer, scheduler, data order and RNG (LoRA dropout 0.1) all came back from the checkpoint."""
    from rlr.checks import load_experiment
    from rlr.runs import StageRun
    from rlr.train.sft import run_sft

    trainer = {"max_steps": 7, "save_steps": 3, "lr_scheduler_type": "cosine", "warmup_steps": 2}
    straight_preset = sft_preset(make_preset, micro_model, name="straight", use_lora=True, trainer=trainer)
    resumed_preset = sft_preset(make_preset, micro_model, name="resumed", use_lora=True, trainer=trainer)
    for preset in (straight_preset, resumed_preset):
        prepare(cli, preset)
    straight = run_sft(load_experiment(straight_preset, stages=("sft",)), StageOptions())

    loaded = load_experiment(resumed_preset, stages=("sft",))
    with pytest.raises(KeyboardInterrupt):
        run_sft(loaded, StageOptions(), callbacks=[StopAfterSave(3)])
    stage = StageRun.of(loaded.cfg, "sft")
    assert stage.status == "interrupted" and (stage.path / "checkpoint-3" / "optimizer.pt").is_file()
    # A kill while saving the next checkpoint leaves it without trainer_state.json (written last): passed over.
    (stage.path / "checkpoint-6").mkdir()
    (stage.path / "checkpoint-6" / "model.safetensors").write_bytes(b"half")
    # ... after logging steps 4-6 (and tearing the last line): records that the resumed run replays.
    with open(stage.path / "metrics.jsonl", "a") as f:
        f.write('{"step": 4, "loss": 9.0}\n{"step": 5, "loss": 9.0}\n{"step": 6, "lo')
    resumed = run_sft(loaded, StageOptions(resume=True))

    assert resumed["steps"] == straight["steps"] == 7
    assert resumed["resumed_from"].endswith("checkpoint-3")
    assert resumed["final_loss"] == pytest.approx(straight["final_loss"], rel=1e-5)
    assert losses(stage.path)[-4:] == pytest.approx(losses(sft_dir(tmp_path, "straight"))[-4:], rel=1e-5)
    steps = [r["step"] for r in read_jsonl(stage.path / "metrics.jsonl") if "loss" in r]
    assert steps == list(range(1, 8)), steps  # each step once: the killed attempt's 4-6 were dropped on resume
    manifest = stage.manifest()
    assert manifest["status"] == "complete" and manifest["attempts"] == 2 and manifest["resumed"]


def test_ctrl_c_saves_a_checkpoint_and_exits_130(make_preset, cli, tmp_path, micro_model):
    preset = sft_preset(make_preset, micro_model, trainer={"max_steps": 5000, "save_steps": 2})
    prepare(cli, preset)
    stage = sft_dir(tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    # Files, not pipes: nobody reads a pipe while we wait, and a full one would block the child.
    err_path = tmp_path / "stderr.txt"
    with open(tmp_path / "stdout.txt", "w") as out, open(err_path, "w") as err_file:
        proc = subprocess.Popen([sys.executable, "-m", "rlr", "sft", str(preset)], cwd=tmp_path, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err_file, text=True)
    try:
        deadline = time.time() + 240  # generous: a loaded 2-core CI machine is ~20x slower per step
        # Any checkpoint will do: steps take milliseconds and save_total_limit rotates checkpoint-2 away quickly,
        # so waiting for one particular directory can miss it between two polls.
        while not any(stage.glob("checkpoint-*")):
            assert proc.poll() is None, err_path.read_text()
            assert time.time() < deadline, f"no checkpoint after 240 s: {err_path.read_text()[-2000:]}"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = err_path.read_text()
    assert proc.returncode == 130, err
    assert "checkpoint saved in" in err and "--resume" in err
    manifest = json.loads((stage / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    from rlr.train.loop import last_checkpoint

    last = Path(last_checkpoint(stage))
    step = json.loads((last / "trainer_state.json").read_text())["global_step"]
    assert step >= 2 and (last / "optimizer.pt").is_file() and (last / "scheduler.pt").is_file()
    assert not (stage / "model").exists()  # an interrupted run has no final model


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("case", ["no_solution", "lora_target", "qlora_on_cpu"])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, make_preset, cli, tmp_path, micro_model):
    overrides: list[str] = []
    sections: dict[str, Any] = {}
    if case == "no_solution":
        rows = [{"question": f"{i}+1=", "answer": str(i + 1)} for i in range(16)]
        sections["data"] = {"train": {"source": str(write_jsonl(tmp_path / "qa.jsonl", rows)), "task": "numeric"}}
        expected = "data.train[0].solution"
    elif case == "lora_target":
        overrides = ["lora.target_modules=[nonexistent]"]
        expected = "lora.target_modules: nonexistent match no module"
    else:
        overrides = ["model.load_in_4bit=true"]
        expected = "model.load_in_4bit=false"
    preset = sft_preset(make_preset, micro_model, use_lora=True, **sections)
    prepare(cli, preset)
    r = cli("sft", preset, *overrides)
    assert r.code == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], r.stderr
    assert not sft_dir(tmp_path).exists()


def test_complete_stage_needs_overwrite(make_preset, cli, tmp_path, micro_model):
    preset = sft_preset(make_preset, micro_model, trainer={"max_steps": 1})
    prepare(cli, preset)
    assert cli("sft", preset).code == 0
    weights = sft_dir(tmp_path) / "model" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    r = cli("sft", preset)
    assert r.code == 2 and "already complete; pass --overwrite" in r.stderr
    assert weights.stat().st_mtime_ns == before
    assert cli("sft", preset, "--resume").code == 2  # resuming a finished stage is refused the same way
    assert cli("sft", preset, "--overwrite").code == 0


def test_plain_text_prompts_full_sequence_loss_packing_and_eval(make_preset, cli, tmp_path, micro_model):
    """template.chat=false gives string prompts (standard prompt-completion); packing, whole-sequence loss and
    evaluation on the run's eval split are TRL settings that pass straight through."""
    task = {"source": "task:arithmetic", "rows": 64, "args": {"digits": 1}}
    preset = sft_preset(make_preset, micro_model, template={"system": "none", "answer_format": "none", "chat": False},
                        data={"train": task, "eval": {**task, "rows": 16}},
                        trainer={"packing": True, "max_length": 48, "eval_strategy": "steps", "eval_steps": 2})
    prepare(cli, preset)
    r = cli("sft", preset, "sft.completion_only_loss=false", "--json")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["steps"] == 2
    assert any("eval_loss" in m for m in read_jsonl(sft_dir(tmp_path) / "metrics.jsonl"))
    config = (sft_dir(tmp_path) / "config.yaml").read_text()
    assert "completion_only_loss: false" in config and "chat: false" in config


def test_init_from_another_model_dir_and_never_from_itself(make_preset, cli, tmp_path, micro_model):
    """A LoRA run on top of an earlier full-parameter SFT output: the lineage names that directory as the base."""
    first = sft_preset(make_preset, micro_model, name="first", trainer={"max_steps": 1})
    prepare(cli, first)
    assert cli("sft", first).code == 0
    earlier = sft_dir(tmp_path, "first") / "model"
    second = sft_preset(make_preset, micro_model, name="second", use_lora=True, trainer={"max_steps": 1})
    prepare(cli, second)
    r = cli("sft", second, f"sft.init_from={earlier}", "--json")
    assert r.code == 0, r.stderr
    lineage = json.loads((sft_dir(tmp_path, "second") / "model" / "rlr_model.json").read_text())
    assert lineage["base"] == str(earlier.resolve())
    r = cli("sft", first, "sft.init_from=sft", "--overwrite")
    assert r.code == 2 and "inside this stage's own directory" in r.stderr
    assert (earlier / "model.safetensors").is_file()  # refused before anything was replaced


def test_full_parameter_sft_from_an_adapter_trains_every_weight(make_preset, cli, tmp_path, micro_model):
    """Merging the init adapter leaves the base frozen (peft froze it); the full-parameter run unfreezes it all."""
    from transformers import AutoModelForCausalLM

    first = sft_preset(make_preset, micro_model, name="adapter", use_lora=True, trainer={"max_steps": 1})
    prepare(cli, first)
    assert cli("sft", first).code == 0
    full = sft_preset(make_preset, micro_model, name="full_on_adapter", trainer={"max_steps": 1})
    prepare(cli, full)
    r = cli("sft", full, f"sft.init_from={sft_dir(tmp_path, 'adapter') / 'model'}", "--json")
    assert r.code == 0, r.stderr
    total = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(micro_model).parameters())
    assert json.loads(r.stdout)["trainable_params"] == total


def test_sft_on_tool_use_traces_trains_the_model_turns_only(cli, make_preset, tmp_path, micro_model):
    """task:arithmetic with tool: calculator: SFT's conversation is the call, the tool's reply and the final answer,
    rendered by the chat template as RL's rollouts render them (the tools listed in the prompt); the loss covers the
    model's two turns and never the tool's reply; `rlr sft` trains on it."""
    from transformers import AutoTokenizer

    from rlr.config.load import load_config
    from rlr.data.prepared import load_split_dataset
    from rlr.envs.rollout_tools import tool_schemas
    from rlr.train.sft_data import model_turns_only, sft_dataset

    data = {"train": {"source": "task:arithmetic", "rows": 32, "args": {"digits": 3, "ops": ["*"],
                                                                       "tool": "calculator"}}}
    preset = sft_preset(make_preset, micro_model, data=data, trainer={"max_length": 192},
                        template={"system": "none", "answer_format": "none", "chat": True},
                        rl={"tools": ["calculator"]})
    prepare(cli, preset)
    loaded = load_config(preset, [])
    pairs = sft_dataset(load_split_dataset(loaded.cfg, "train"), loaded.cfg, tools=tool_schemas(loaded))
    tokenizer = AutoTokenizer.from_pretrained(micro_model)
    pair = pairs[0]
    question = pair["prompt"][-1]["content"]
    a, b = (int(x) for x in question.removesuffix("=").split("*"))
    text = tokenizer.apply_chat_template(pair["prompt"] + pair["completion"], tools=json.loads(pair["tools"]),
                                         tokenize=False)
    assert text == (
        "<|im_start|>system\nTools: calculator(expression)<|im_end|>\n"
        f"<|im_start|>user\n{question}<|im_end|>\n"
        '<|im_start|>assistant\n<tool_call>{"name": "calculator", "arguments": {"expression": "'
        f'{a}*{b}"}}}}</tool_call><|im_end|>\n'
        f"<|im_start|>user\n<tool_response>\n{a * b}\n</tool_response><|im_end|>\n"
        f"<|im_start|>assistant\n{a * b}<|im_end|>\n")
    tokenized = model_turns_only(pairs, tokenizer)[0]
    assert tokenizer.decode(tokenized["input_ids"]) == text
    trained = [i for i, m in zip(tokenized["input_ids"], tokenized["completion_mask"], strict=True) if m]
    assert tokenizer.decode(trained) == (
        f'<tool_call>{{"name": "calculator", "arguments": {{"expression": "{a}*{b}"}}}}</tool_call><|im_end|>\n'
        f"{a * b}<|im_end|>\n")
    plain = sft_dataset(load_split_dataset(loaded.cfg, "train").map(lambda r: {"meta": "{}"}), loaded.cfg)
    assert model_turns_only(plain, tokenizer) is plain  # one-message targets: TRL tokenizes them as before

    from rlr.checks import load_experiment
    from rlr.train.sft import run_sft

    class FirstBatchLabels(TrainerCallback):
        """What TRL's collator hands the loss: the labels of the first training batch."""

        labels: list[list[int]] = []

        def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
            batch = next(iter(train_dataloader))
            FirstBatchLabels.labels = [[t for t in row if t != -100] for row in batch["labels"].tolist()]

    run_sft(load_experiment(preset, stages=("sft",)), StageOptions(), callbacks=[FirstBatchLabels()])
    assert FirstBatchLabels.labels
    for labels in FirstBatchLabels.labels:  # a call, then a bare number: no <tool_response>, no prompt
        text = tokenizer.decode(labels)
        assert text.startswith('<tool_call>{"name": "calculator"') and "tool_response" not in text, text
        assert text.split("</tool_call><|im_end|>\n")[1].removesuffix("<|im_end|>\n").isdigit(), text
    assert losses(sft_dir(tmp_path)) and all(loss > 0 for loss in losses(sft_dir(tmp_path)))

    # sft.train_on_tool_replies: the replies count too (everything after the prompt, as TRL does by itself)
    run_sft(load_experiment(preset, ["sft.train_on_tool_replies=true"], stages=("sft",)), StageOptions(overwrite=True),
            callbacks=[FirstBatchLabels()])
    for labels in FirstBatchLabels.labels:
        text = tokenizer.decode(labels)
        assert text.startswith('<tool_call>{"name": "calculator"') and "\n<|im_start|>user\n<tool_response>\n" in text


def test_a_template_that_renders_turns_differently_alone_is_refused_naming_the_fix():
    """model_turns_only finds the tool replies by rendering the conversation turn by turn; a template whose opening
    turns render differently inside the whole conversation cannot be split, and says so instead of mis-masking."""
    from datasets import Dataset

    from rlr.errors import UserError
    from rlr.train.sft_data import model_turns_only

    class Reordering:
        """Renders the number of messages first: no conversation's beginning is a prefix of the whole."""

        def apply_chat_template(self, messages, **kwargs):
            return [len(messages)] + [len(m["content"]) for m in messages]

    rows = Dataset.from_list([{"prompt": [{"role": "user", "content": "2*3="}],
                               "completion": [{"role": "assistant", "content": "call"},
                                              {"role": "tool", "content": "6"},
                                              {"role": "assistant", "content": "6"}]}])
    with pytest.raises(UserError, match="renders a conversation's first turns differently.*model.chat_template"):
        model_turns_only(rows, Reordering())
