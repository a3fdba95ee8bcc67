"""`rlr estimate`: sizes from config.json or the preset, the breakdown, the verdict and the knobs, the validate
section; and (slow) the estimate of the ~1M tiny model against a measured `rlr sft` / `rlr train-rl` run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from rlr.estimate.memory import StagePlan, estimate_memory
from rlr.estimate.shape import model_shape
from rlr.estimate.stage import parse_memory

REPO = Path(__file__).resolve().parent.parent
QWEN05 = {"hidden_size": 896, "num_hidden_layers": 24, "intermediate_size": 4864, "num_attention_heads": 14,
          "num_key_value_heads": 2, "vocab_size": 151936, "tie_word_embeddings": True, "model_type": "qwen2"}


def test_parameter_count_matches_the_real_model(tiny_model):
    from rlr.models.tiny import count_parameters

    assert model_shape(str(tiny_model), Path("."), {}).params() == count_parameters(tiny_model)


def test_qwen05_sizes_from_the_preset_give_its_known_parameter_count():
    shape = model_shape("Qwen/Qwen2.5-0.5B-Instruct-not-cached", Path("."), QWEN05)
    assert abs(shape.params() - 494_032_768) / 494_032_768 < 0.001  # the published count


def test_sizes_from_the_local_hf_cache(tmp_path, monkeypatch):
    snapshot = tmp_path / "hub/models--org--cached-model/snapshots/abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps(QWEN05))
    (tmp_path / "hub/models--org--cached-model/refs").mkdir()
    (tmp_path / "hub/models--org--cached-model/refs/main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    shape = model_shape("org/cached-model", tmp_path, {})
    assert shape.hidden == 896 and shape.source.startswith("hf cache: ") and shape.tied


def test_parse_memory():
    assert parse_memory("24GB") == parse_memory("24 GiB") == 24 * 2**30
    assert parse_memory("512MB") == 512 * 2**20


def test_checkpointing_and_lora_shrink_the_training_peak():
    shape = model_shape("x", Path("."), QWEN05)
    full = StagePlan(stage="sft", dtype="bfloat16", load_in_4bit=False, lora_targets=None, lora_r=16,
                     lora_dropout=0.0, rows=8, seq=1024, grad_accum=1, checkpointing=False, optim="adamw_torch",
                     attention="sdpa")
    est = estimate_memory(shape, full)
    assert est.activations_with_checkpointing < est.activations_without_checkpointing / 5
    names = {p.name for p in est.resident}
    assert {"weights", "optimizer state"} <= names and est.total(est.resident) > 2.9 * shape.params() * 2
    from dataclasses import replace

    lora = estimate_memory(shape, replace(full, lora_targets=("all-linear",), checkpointing=True))
    assert lora.peak < est.peak / 3


def _preset(tmp_path: Path, model: str, dtype: str = "auto", **extra) -> Path:
    from conftest import write_preset

    data = {"run": {"name": "e", "output_dir": str(tmp_path / "runs")},
            "model": {"name_or_path": model, "dtype": dtype},
            "data": {"train": {"source": "task:arithmetic", "rows": 16}}, "rewards": [{"name": "accuracy"}],
            "rl": {"trainer": {"per_device_train_batch_size": 16, "num_generations": 8, "max_completion_length": 512,
                               "beta": 0.04}, "use_lora": False},
            "pipeline": {"stages": ["data", "rl"]}, **extra}
    return write_preset(tmp_path / "e.yaml", data)


def test_hub_id_not_cached_names_the_keys_to_give(cli, tmp_path):
    result = cli("estimate", _preset(tmp_path, "someone/not-cached-model"))
    assert result.code == 2
    assert "estimate.model_config" in result.stderr and "hidden_size" in result.stderr
    assert "not in the local Hugging Face cache" in result.stderr and "Traceback" not in result.stderr


def test_estimate_json_breakdown_verdict_and_knobs(cli, tmp_path):
    preset = _preset(tmp_path, "Qwen/Qwen2.5-0.5B-Instruct-not-cached", dtype="bfloat16",
                     estimate={"model_config": QWEN05})
    result = cli("estimate", preset, "--memory", "8GB", "--json", "--tflops", "100", "--bandwidth-gbs", "1000")
    assert result.code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["device"]["target"] == "cuda" and out["memory_gib"] == 8.0
    rl = out["stages"]["rl"]
    parts = {p["part"] for p in rl["resident"] + rl["training"] + rl["generation"]}
    assert {"weights", "reference model", "optimizer state", "activations", "logits peak", "KV cache"} <= parts
    assert rl["fits"] is False and rl["make_it_fit"], rl
    assert rl["step_s"] > 0 and rl["tokens_per_step"] == 16 * (512 + 512)  # assumed 512-token prompts
    assert any("assumed 512" in n for n in out["notes"])
    roomy = json.loads(cli("estimate", preset, "--memory", "141GB", "--json", "--tflops", "100",
                           "--bandwidth-gbs", "1000").stdout)
    assert roomy["stages"]["rl"]["fits"] is True


def test_validate_shows_the_estimate_and_never_fails_on_it(cli, tmp_path, tiny_model):
    result = cli("validate", _preset(tmp_path, str(tiny_model)), "--json")
    assert result.code == 0, result.stderr
    est = json.loads(result.stdout)["estimate"]
    assert est["model"]["params"] > 900_000 and "rl" in est["stages"]
    unknown = cli("validate", _preset(tmp_path, "someone/not-cached-model"), "--json")
    assert unknown.code == 0 and "estimate.model_config" in json.loads(unknown.stdout)["estimate"]["error"]


@pytest.mark.slow
def test_tiny_model_estimate_within_25_percent_of_measured_runs(tmp_path):
    """The ~1M model: peak RSS growth of real `rlr sft` and `rlr train-rl` runs (tests/bench/bench_memory.py: 12 child
    processes, 2-8 min depending on load, hence slow) against the estimate."""
    sys.path.insert(0, str(REPO / "tests/bench"))
    from bench_memory import measure

    for stage in ("sft", "rl"):
        r = measure(tmp_path, "tiny", stage, steps=2)
        assert 0.75 <= r["ratio"] <= 1.25, r
