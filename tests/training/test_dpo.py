"""Offline DPO on a tiny random Llama built in tmp_path (no downloads)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lbt_agents.errors import ConfigError, DataError
from lbt_agents.training import DPOSettings, TrainResult, train_dpo

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("peft")


@pytest.fixture()
def base(tiny_model_dir) -> Path:
    return tiny_model_dir


@pytest.fixture()
def data(tiny_pairs_dir) -> Path:
    return tiny_pairs_dir


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def _changed(base: Path, tuned: Path, dtype) -> list[str]:
    """Names of tensors that differ after casting the base to the tuned folder's dtype."""
    before, after = _weights(base), _weights(tuned)
    assert set(before) == set(after)
    return [k for k in before if not torch.equal(before[k].to(dtype), after[k])]


def _settings(base: Path, data: Path, out: Path, **kw) -> DPOSettings:
    values = {"model": str(base), "data": data, "output_dir": out, "max_steps": 2, "learning_rate": 1e-3, **kw}
    return DPOSettings(**values)


def test_lora_dpo_two_steps_changes_merged_weights(base, data, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    lines: list[str] = []
    out = tmp_path / "run"
    result = train_dpo(_settings(base, data, out), emit=lines.append)

    assert isinstance(result, TrainResult)
    assert result.steps == 2 and len(result.losses) == 2
    assert result.final_loss == result.losses[-1]
    assert result.losses[0] == pytest.approx(0.6931, abs=1e-3)  # log 2: policy == reference at step 1
    assert result.merged_dir == out / "merged" and result.adapter_dir == out / "adapter"
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert any(line.startswith("step 2/2 loss") for line in lines)

    changed = _changed(base, out / "merged", torch.bfloat16)
    assert any("q_proj" in k for k in changed), changed  # LoRA on all linear layers moved attention weights
    assert not any("norm" in k for k in changed)  # ...and left the rest alone
    assert not any("embed_tokens" in k for k in changed)

    merged = AutoModelForCausalLM.from_pretrained(out / "merged", local_files_only=True)
    assert merged.dtype == torch.bfloat16
    assert AutoTokenizer.from_pretrained(out / "merged").chat_template
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 2 and summary["pairs"] == 8
    assert [round(h["loss"], 6) for h in summary["history"]] == [round(x, 6) for x in result.losses]
    assert summary["settings"]["lora"] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temporary folders left
    assert not (out / ".trainer").exists()


def test_full_finetune_two_steps(base, data, tmp_path):
    out = tmp_path / "full"
    result = train_dpo(_settings(base, data, out, lora=False, save_dtype="float32", learning_rate=1e-4))
    assert result.adapter_dir is None and not (out / "adapter").exists()
    assert result.steps == 2
    changed = _changed(base, out / "merged", torch.float32)
    assert any("embed_tokens" in k for k in changed)  # full fine-tuning moves every kind of weight
    assert any("mlp" in k for k in changed)


def test_nll_weight_no_merge_and_threads(base, data, tmp_path):
    out = tmp_path / "rpo"
    threads = torch.get_num_threads()
    result = train_dpo(_settings(base, data, out, nll_weight=1.0, merge=False, num_threads=1))
    assert torch.get_num_threads() == threads  # restored after training
    assert json.loads((out / "train_summary.json").read_text())["num_threads"] == 1
    assert result.merged_dir is None and not (out / "merged").exists()
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    # the NLL of the chosen reply (about log(vocab) for a random model) is added to the DPO loss
    assert result.losses[0] > 0.6931 + 1.0


def test_max_prompt_length_skips_long_prompts(base, data, tmp_path):
    with pytest.raises(DataError, match="max_prompt_length"):
        train_dpo(_settings(base, data, tmp_path / "x", max_prompt_length=3))
    assert not (tmp_path / "x").exists()


def test_missing_or_empty_data_is_a_data_error(base, tmp_path):
    with pytest.raises(DataError, match="not found"):
        train_dpo(_settings(base, tmp_path / "nope", tmp_path / "out"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError):
        train_dpo(_settings(base, tmp_path / "empty", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_model_that_is_not_a_causal_lm_is_a_config_error(data, tmp_path):
    from transformers import BertConfig

    folder = tmp_path / "bert"
    config = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    config.architectures = ["BertForMaskedLM"]
    config.save_pretrained(folder)
    with pytest.raises(ConfigError, match="not a causal LM"):
        train_dpo(_settings(folder, data, tmp_path / "out"))
    with pytest.raises(ConfigError, match="not a Hugging Face model folder"):
        train_dpo(_settings(tmp_path, data, tmp_path / "out"))
    with pytest.raises(ConfigError, match="not found"):
        train_dpo(_settings(tmp_path / "no" / "such", data, tmp_path / "out"))


def test_settings_reject_unknown_keys_and_bad_values(tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        DPOSettings(data=tmp_path, output_dir=tmp_path, bta=0.1)
    with pytest.raises(ValidationError):
        DPOSettings(data=tmp_path, output_dir=tmp_path, beta=0)
    assert DPOSettings(data=tmp_path, output_dir=tmp_path).lora is True
