"""``lbt m2 train``: YAML, flags, env vars and one-line errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from lbt_agents.cli import cli, main

pytest.importorskip("trl")


def test_train_from_yaml_flags_and_env(tiny_model_dir, tiny_pairs_dir, tmp_path, monkeypatch):
    config = tmp_path / "dpo.yaml"
    config.write_text(f"model: {tiny_model_dir}\nbeta: 0.25\nlora_r: 4\nlearning_rate: 0.001\nmax_steps: 5\n")
    out = tmp_path / "out"
    monkeypatch.setenv("LBT_M2_TRAIN_OUT", str(out))  # auto_envvar_prefix: LBT_<CMD>_<SUB>_<OPT>
    result = CliRunner().invoke(
        cli,
        ["m2", "train", "--config", str(config), "--data", str(tiny_pairs_dir), "--max-steps", "1",
         "--set", "lora_alpha=8"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "step 1/1 loss" in result.output
    summary = json.loads((out / "train_summary.json").read_text())
    settings = summary["settings"]
    assert (settings["beta"], settings["lora_r"], settings["lora_alpha"]) == (0.25, 4, 8)
    assert settings["max_steps"] == 1  # the flag beats the YAML file
    assert summary["steps"] == 1
    assert (out / "merged" / "model.safetensors").is_file()


def test_full_flag_turns_lora_off(tiny_model_dir, tiny_pairs_dir, tmp_path):
    out = tmp_path / "full"
    result = CliRunner().invoke(
        cli,
        ["m2", "train", "--data", str(tiny_pairs_dir), "--model", str(tiny_model_dir), "--out", str(out),
         "--full", "--max-steps", "1", "--no-merge"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["settings"]["lora"] is False
    assert (out / "merged").is_dir() and not (out / "adapter").exists()  # full models are always written


def test_out_over_someones_folder_is_refused_and_retraining_replaces_its_own(tiny_model_dir, tiny_pairs_dir, tmp_path):
    """The bug: --out at a folder of other files trained, then deleted them all, and exited 0."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "checkpoints.sqlite").write_text("precious")
    args = ["m2", "train", "--data", str(tiny_pairs_dir), "--model", str(tiny_model_dir), "--max-steps", "1",
            "--no-merge"]  # fmt: skip
    refused = CliRunner().invoke(cli, [*args, "--out", str(theirs)])
    assert refused.exit_code != 0 and "refusing to replace" in str(refused.exception)
    assert (theirs / "checkpoints.sqlite").read_text() == "precious" and len(list(theirs.iterdir())) == 1
    out = tmp_path / "dpo"
    for _ in range(2):  # the second run replaces the first run's own output
        result = CliRunner().invoke(cli, [*args, "--out", str(out)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    assert (out / ".lbt-owned").is_file() and (out / "adapter").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dpo", "theirs"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "{tmp}/missing", "--out", "{tmp}/o"], "preference data folder not found"),
        (["--out", "{tmp}/o"], "data: Field required"),
        (["--data", "{tmp}", "--out", "{tmp}/o", "--set", "bta=1"], "bta: Extra inputs are not permitted"),
        (["--data", "{tmp}", "--out", "{tmp}/o", "--config", "{tmp}/none.yaml"], "config file not found"),
    ],
)
def test_errors_are_one_line(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["m2", "train", *[a.format(tmp=tmp_path) for a in args]])
    assert exc.value.code != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err
    assert "\n" not in err
