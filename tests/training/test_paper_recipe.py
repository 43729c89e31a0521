"""The paper's M2 recipe as the ``paper`` profile of the DPO settings (``lbt m2 train --profile paper``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lbt_agents.cli import cli, main
from lbt_agents.config import read_yaml, validate
from lbt_agents.errors import ConfigError
from lbt_agents.training.dpo import DPOSettings, dpo_config

pytest.importorskip("trl")

TRAIN_CONFIG = Path(__file__).resolve().parents[2] / "experiments" / "configs" / "m2_paper_train.yaml"


def test_paper_profile_yields_the_papers_trainer_arguments(tmp_path: Path) -> None:
    settings = DPOSettings(profile="paper", data=tmp_path / "d", output_dir=tmp_path / "o")
    assert settings.lora is False  # full fine-tuning
    args = dpo_config(settings, tmp_path / "work")
    assert args.learning_rate == 5e-7 and args.beta == 0.1
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps == 16
    assert (args.num_train_epochs, args.max_steps) == (1.0, -1)
    assert args.loss_type == ["sigmoid", "sft"] and args.loss_weights == [1.0, 1.0]  # DPO + NLL on the chosen


def test_default_profile_stays_lora_without_nll(tmp_path: Path) -> None:
    settings = DPOSettings(data=tmp_path / "d", output_dir=tmp_path / "o")
    args = dpo_config(settings, tmp_path / "work")
    assert settings.lora and args.learning_rate == 5e-5 and args.per_device_train_batch_size == 2
    assert args.loss_type == ["sigmoid"] and args.loss_weights is None


def test_own_settings_override_the_profile_and_unknown_profiles_are_refused(tmp_path: Path) -> None:
    own = DPOSettings(profile="paper", data=tmp_path, output_dir=tmp_path / "o", per_device_batch_size=2,
                      gradient_accumulation_steps=8)  # fmt: skip
    assert (own.per_device_batch_size, own.gradient_accumulation_steps, own.learning_rate) == (2, 8, 5e-7)
    with pytest.raises(ConfigError, match="unknown profile 'nope'"):
        validate(DPOSettings, {"profile": "nope", "data": "d", "output_dir": "o"})


def test_table4_training_config_is_the_paper_recipe(tmp_path: Path) -> None:
    data = {**read_yaml(TRAIN_CONFIG), "data": tmp_path / "d", "output_dir": tmp_path / "o"}
    settings = validate(DPOSettings, data)
    assert settings.profile == "paper" and not settings.lora and settings.nll_weight == 1.0
    assert "Table 4" in TRAIN_CONFIG.read_text().splitlines()[0]


def test_cli_trains_with_the_paper_profile(tiny_model_dir: Path, tiny_pairs_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "paper"
    result = CliRunner().invoke(
        cli,
        ["m2", "train", "--profile", "paper", "--data", str(tiny_pairs_dir), "--model", str(tiny_model_dir),
         "--out", str(out), "--max-steps", "1", "--batch-size", "2"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "train_summary.json").read_text())
    s = summary["settings"]
    assert (s["profile"], s["lora"], s["nll_weight"], s["beta"]) == ("paper", False, 1.0, 0.1)
    assert summary["learning_rate"] == 5e-7 and s["per_device_batch_size"] == 2  # the flag beats the profile
    assert (out / "merged").is_dir() and not (out / "adapter").exists()


def test_cli_refuses_an_unknown_profile_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["m2", "train", "--profile", "nope", "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert exc.value.code != 0 and err.startswith("error: ") and "unknown profile 'nope'" in err and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_table4_run_config_uses_the_paper_profile() -> None:
    from lbt_agents.config import load_config

    cfg = load_config(TRAIN_CONFIG.with_name("m2_paper.yaml"))
    assert cfg.profile == "paper" and cfg.task.name == "math500" and cfg.m2.eval_task.offset == cfg.task.limit
    assert "Table 4" in TRAIN_CONFIG.with_name("m2_paper.yaml").read_text().splitlines()[0]
