"""`rlr export`: merged and adapter-only exports of single and stacked LoRA, checked against the adapter model.

The input stages are built here with peft (lora_B drawn non-zero, so a merge that drops an adapter shows), not by
running `rlr sft` / `rlr train-rl`: these tests pin export's own contract.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from rlr.models.references import ModelRef, write_lineage
from rlr.runs import StageRun

TEXT = "12+7= <think>2+7=9</think> 19"


def _lora(model, out: Path, seed: int):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)  # lora_A is drawn from the global generator
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear"))
    gen = torch.Generator().manual_seed(seed)
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            p.data = torch.randn(p.shape, generator=gen) * 0.3
    peft_model.save_pretrained(out)
    return peft_model


def _stage(run_root: Path, stage: str, preset: Path, model_dir: Path, ref: ModelRef, algorithm: str = "grpo"):
    from rlr.config.coerce import to_dict
    from rlr.config.load import load_config

    cfg = to_dict(load_config(preset).cfg)
    cfg["rl"]["algorithm"] = algorithm
    write_lineage(model_dir, ref)
    run = StageRun(run_root, stage)
    run.start(config=cfg, overwrite=False, resume=True, device={"name": "cpu", "dtype": "float32"})
    run.finish("complete", outputs={"steps": 3})


def build_run(preset: Path, micro: Path, stages: tuple[str, ...] = ("sft", "rl")) -> Path:
    """runs/t/sft/model = LoRA on the micro model; runs/t/rl/model = a second LoRA on the merged SFT model."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run_root = Path(yaml.safe_load(preset.read_text())["run"]["output_dir"]) / "t"
    tok = AutoTokenizer.from_pretrained(micro)
    model = AutoModelForCausalLM.from_pretrained(micro, dtype=torch.float32)
    sft_dir = run_root / "sft" / "model"
    merged_sft = _lora(model, sft_dir, seed=1).merge_and_unload()
    tok.save_pretrained(sft_dir)
    _stage(run_root, "sft", preset, sft_dir, ModelRef(str(micro), [str(sft_dir)]))
    if "rl" in stages:
        rl_dir = run_root / "rl" / "model"
        _lora(merged_sft, rl_dir, seed=2)
        tok.save_pretrained(rl_dir)
        _stage(run_root, "rl", preset, rl_dir, ModelRef(str(micro), [str(sft_dir), str(rl_dir)]))
    return run_root


def logits(model, micro: Path) -> torch.Tensor:
    from transformers import AutoTokenizer

    ids = AutoTokenizer.from_pretrained(micro)(TEXT, return_tensors="pt").input_ids
    with torch.no_grad():
        return model.eval()(input_ids=ids).logits.float()


def both_adapters(run_root: Path, micro: Path) -> torch.Tensor:
    """Base + SFT LoRA + RL LoRA, all unmerged and active at once (no rlr code involved)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(micro, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, run_root / "sft" / "model", adapter_name="sft")
    model.load_adapter(run_root / "rl" / "model", adapter_name="rl")
    model.base_model.set_adapter(["sft", "rl"])
    return logits(model, micro)


@pytest.fixture
def preset(make_preset, micro_model):
    return make_preset(micro_model, eval={"temperature": 0.7, "top_p": 0.9})


def test_stacked_merge_reloads_and_matches_both_adapters(cli, preset, micro_model):
    from transformers import AutoModelForCausalLM

    run_root = build_run(preset, micro_model)
    r = cli("export", preset, "--json")
    assert r.code == 0, r.stderr
    summary = json.loads(r.stdout)
    out = run_root / "export"
    assert summary["adapters_merged"] == 2 and summary["logits_max_abs_diff"] <= 1e-4 and summary["wall_s"] > 0
    assert not (out / "rlr_model.json").exists() and not (out / "adapter_config.json").exists()
    assert list(out.glob("*.safetensors")) and not list(run_root.glob(".export*"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["stage"] == "export"
    assert manifest["outputs"]["check"]["max_abs_diff"] == summary["logits_max_abs_diff"]
    assert (out / "config.yaml").is_file()

    exported = logits(AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32), micro_model)
    expected = both_adapters(run_root, micro_model)
    plain = logits(AutoModelForCausalLM.from_pretrained(micro_model, dtype=torch.float32), micro_model)
    assert torch.allclose(exported, expected, atol=1e-4)
    assert (exported - plain).abs().max() > 1e-2  # the adapters matter, so a dropped one would be caught

    gen = json.loads((out / "generation_config.json").read_text())
    assert gen["do_sample"] is True and gen["temperature"] == 0.7 and gen["top_p"] == 0.9
    assert gen["eos_token_id"] is not None and gen["pad_token_id"] is not None
    assert (out / "chat_template.jinja").is_file() or "chat_template" in (out / "tokenizer_config.json").read_text()


def test_export_loads_without_peft_or_rlr(cli, preset, micro_model, tmp_path):
    """The card's own "how to load" snippet runs in a fresh interpreter where peft and rlr cannot be imported."""
    run_root = build_run(preset, micro_model)
    out = tmp_path / "exported"
    r = cli("export", preset, "--from", run_root / "rl" / "model", "--out", out, "export.max_shard_size=60KB",
            "--json")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["adapters_merged"] == 2 and not (run_root / "export").exists()
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"
    assert len(list(out.glob("model-*.safetensors"))) > 1 and (out / "model.safetensors.index.json").is_file()
    card = (out / "README.md").read_text()
    assert "### RL" in card  # the stage's config.yaml beside the model dir was found
    snippet = card.split("```python\n", 1)[1].split("```", 1)[0].replace("PATH_TO_THIS_DIRECTORY", str(out))
    code = "import sys\nsys.modules['peft'] = None\nsys.modules['rlr'] = None\n" + snippet + \
           "\nassert 'peft' not in {m.split('.')[0] for m in sys.modules if sys.modules[m] is not None}\n"
    env = {**os.environ, "PYTHONPATH": ""}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_adapter_only_export_of_single_adapter(cli, preset, micro_model):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run_root = build_run(preset, micro_model, stages=("sft",))
    r = cli("export", preset, "export.merge_lora=false", "--json")
    assert r.code == 0, r.stderr
    out = run_root / "export"
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    assert not (out / "rlr_model.json").exists() and not (out / "model.safetensors").exists()
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(micro_model)
    assert "library_name: peft" in (out / "README.md").read_text()
    base = AutoModelForCausalLM.from_pretrained(micro_model, dtype=torch.float32)
    reloaded = logits(PeftModel.from_pretrained(base, out), micro_model)
    base = AutoModelForCausalLM.from_pretrained(micro_model, dtype=torch.float32)
    source = logits(PeftModel.from_pretrained(base, run_root / "sft" / "model"), micro_model)
    assert torch.allclose(reloaded, source, atol=1e-5)


def test_adapter_only_export_of_a_stack_is_refused(cli, preset, micro_model):
    run_root = build_run(preset, micro_model)
    r = cli("export", preset, "export.merge_lora=false")
    assert r.code == 2 and "stack of 2" in r.stderr and "export.merge_lora=true" in r.stderr
    assert not (run_root / "export").exists()


def test_model_card(cli, preset, micro_model):
    run_root = build_run(preset, micro_model)
    data = StageRun(run_root, "data")
    data.start(config={}, overwrite=False, resume=False)
    data.finish(outputs={"train.jsonl": {"rows": 64, "sha256": "a" * 64}})
    (run_root / "eval").mkdir()
    (run_root / "eval" / "results.json").write_text(json.dumps({
        "benchmarks": ["eval"], "models": {"rl": {"generation": {"temperature": 0.7}}},
        "table": {"sft": {"eval": {"pass@1": 0.25, "pass@1_ci": [0.1, 0.4]}},
                  "rl": {"eval": {"pass@1": 0.5, "pass@1_ci": [0.3, 0.7]}}}}))
    assert cli("export", preset).code == 0
    card = (run_root / "export" / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["library_name"] == "transformers" and {"rlr", "reasoning", "grpo", "sft"} <= set(front["tags"])
    assert "base_model" not in front  # a local directory is not a hub id
    assert f"Base model: `{micro_model}`" in card
    assert "Algorithm: `grpo`" in card and "`accuracy` x 1.0" in card
    assert "`beta=0.04`" in card and "r=16, alpha=32" in card and "### SFT" in card and "### RL" in card
    assert "a" * 64 in card
    assert "| model | eval pass@1 |" in card and "| rl | 0.500 |" in card and "| sft | 0.250 |" in card
    assert "transformers=" in card and "rlr=" in card and "AutoModelForCausalLM.from_pretrained" in card


def test_bfloat16_export(cli, preset, micro_model):
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    run_root = build_run(preset, micro_model)
    r = cli("export", preset, "export.dtype=bfloat16", "--json")
    assert r.code == 0, r.stderr
    out = run_root / "export"
    with safe_open(out / "model.safetensors", "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}
    assert AutoModelForCausalLM.from_pretrained(out).dtype == torch.bfloat16
    check = json.loads(r.stdout)
    assert 0 < check["logits_max_abs_diff"] <= check["tolerance"]


def test_bad_inputs_exit_2(cli, preset, micro_model):
    r = cli("export", preset)
    assert r.code == 2 and "run `rlr sft" in r.stderr  # nothing to export yet
    assert cli("export", preset, "--from", "rl").code == 2
    build_run(preset, micro_model, stages=("sft",))
    r = cli("export", preset, "--from", "nonsense")
    assert r.code == 2 and "nonsense" in r.stderr and "sft, rl" in r.stderr
    r = cli("export", preset, "--from", "rl")
    assert r.code == 2 and "rl" in r.stderr and "train-rl" in r.stderr
    r = cli("export", preset, "export.dtype=fp8")
    assert r.code == 2 and "export.dtype" in r.stderr and "bfloat16" in r.stderr


def test_push_to_hub_offline_fails_before_writing(cli, preset, micro_model, monkeypatch):
    run_root = build_run(preset, micro_model, stages=("sft",))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = cli("export", preset, "--push-to-hub", "me/model")
    assert r.code == 2 and "HF_HUB_OFFLINE" in r.stderr and "--push-to-hub" in r.stderr
    assert not (run_root / "export").exists()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(run_root / "no-hf-home"))
    r = cli("export", preset, "--push-to-hub", "me/model")
    assert r.code == 2 and "token" in r.stderr


def test_refuses_to_overwrite(cli, preset, micro_model, tmp_path):
    run_root = build_run(preset, micro_model, stages=("sft",))
    assert cli("export", preset).code == 0
    r = cli("export", preset)
    assert r.code == 2 and "--overwrite" in r.stderr
    first = (run_root / "export" / "manifest.json").read_text()
    assert cli("export", preset, "--overwrite").code == 0
    assert (run_root / "export" / "manifest.json").read_text() != first
    assert [p.name for p in run_root.iterdir() if p.name.startswith(".")] == []

    # A killed export: its temp dir is cleaned up, and a previous export it had moved aside (killed between the
    # two renames) is put back; a damaged manifest in the run's own export/ still yields to --overwrite.
    (run_root / ".export.tmp-999999").mkdir()
    os.replace(run_root / "export", run_root / ".export.old-999999")
    r = cli("export", preset)
    assert r.code == 2 and "already holds an export" in r.stderr  # the moved-aside export is back
    assert [p.name for p in run_root.iterdir() if p.name.startswith(".")] == []
    (run_root / "export" / "manifest.json").write_text('{"stage": "export", "status": ')
    r = cli("export", preset)
    assert r.code == 2 and "unreadable manifest.json" in r.stderr
    assert cli("export", preset, "--overwrite").code == 0

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    for extra in ((), ("--overwrite",)):
        r = cli("export", preset, "--out", foreign, *extra)
        assert r.code == 2 and "not an rlr export" in r.stderr
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_full_weights_source_in_float16(cli, preset, micro_model, tmp_path):
    """A directory of full weights (e.g. full-parameter SFT) is re-saved in the asked dtype, with the same checks."""
    from transformers import AutoModelForCausalLM

    out = tmp_path / "fp16"
    r = cli("export", preset, "--from", micro_model, "--out", out, "export.dtype=float16", "--json")
    assert r.code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["adapters_merged"] == 0 and summary["logits_max_abs_diff"] <= summary["tolerance"]
    assert AutoModelForCausalLM.from_pretrained(out).dtype == torch.float16
    check = json.loads((out / "manifest.json").read_text())["outputs"]["check"]
    assert check["merge_max_abs_diff"] is None and check["roundtrip_max_abs_diff"] <= 1e-4
    assert "## Training" not in (out / "README.md").read_text()  # no stage of any run: no borrowed history


def test_failed_check_marks_export_failed(cli, preset, micro_model, monkeypatch):
    import rlr.export.check

    run_root = build_run(preset, micro_model, stages=("sft",))
    monkeypatch.setitem(rlr.export.check.TOLERANCE, "float32", (-1.0, 0.0))  # no diff can pass
    r = cli("export", preset)
    assert r.code == 1 and "marked failed" in r.stderr
    manifest = json.loads((run_root / "export" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "differ" in manifest["error"]
    assert cli("export", preset).code == 2  # a failed export is still not replaced without --overwrite


def test_push_to_hub_uploads_the_finished_export(cli, preset, micro_model, monkeypatch, tmp_path):
    """The hub calls are faked: a failure leaves a complete local export; a success is recorded in the manifest."""
    import huggingface_hub

    build_run(preset, micro_model, stages=("sft",))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    uploads = []

    def unreachable(*args, **kwargs):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(huggingface_hub, "create_repo", unreachable)
    r = cli("export", preset, "--out", tmp_path / "a", "--push-to-hub", "me/model")
    assert r.code == 2 and "local export" in r.stderr and "hf upload me/model" in r.stderr
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["status"] == "complete"

    monkeypatch.setattr(huggingface_hub, "create_repo", lambda repo, **kw: f"https://hub.example/{repo}")
    monkeypatch.setattr(huggingface_hub, "upload_folder", lambda **kw: uploads.append(kw))
    r = cli("export", preset, "--out", tmp_path / "b", "--push-to-hub", "me/model", "--json")
    assert r.code == 0, r.stderr
    assert uploads[0]["repo_id"] == "me/model" and Path(uploads[0]["folder_path"]) == tmp_path / "b"
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["outputs"]["pushed_to"].endswith("me/model")
    assert 'from_pretrained("me/model"' in (tmp_path / "b" / "README.md").read_text()
