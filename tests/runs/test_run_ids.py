"""Run ids are names, never paths: nothing is written outside ``output_dir``."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbt_agents.config import RunConfig, check_run_id, load_config
from lbt_agents.errors import ConfigError
from lbt_agents.runs import open_run, prepare_run, resume_config
from tests.runs._cli import RUN_COMMANDS, lbt_here, one_line

BAD_IDS = ["../../x", "..", "a/b", "/abs", "a\\b", ".hidden", "a..b", "a\x00b", "x" * 101, "a b", "run\n2"]
GOOD_IDS = ["r1", "m1-20261202-000000-0042", "exp_3.v2", "x" * 100]


@pytest.mark.parametrize("run_id", BAD_IDS)
def test_a_path_is_not_a_run_id(run_id: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"must be a name \(letters, digits, - _ \.\)"):
        check_run_id(run_id)
    with pytest.raises(ValueError, match="must be a name"):
        RunConfig(run_id=run_id)
    # a config that skipped validation (model_copy) is still refused before anything is written
    cfg = RunConfig(output_dir=tmp_path / "runs").model_copy(update={"run_id": run_id})
    with pytest.raises(ConfigError, match="must be a name"):
        prepare_run(cfg)
    with pytest.raises(ConfigError, match="must be a name"):
        prepare_run(RunConfig(output_dir=tmp_path / "runs"), resume=run_id)
    with pytest.raises(ConfigError, match="must be a name"):
        resume_config(tmp_path / "runs", run_id)
    with pytest.raises(ConfigError, match="must be a name"), open_run(cfg):
        pass
    assert list(tmp_path.rglob("*")) == []


@pytest.mark.parametrize("run_id", GOOD_IDS)
def test_names_are_run_ids(run_id: str, tmp_path: Path) -> None:
    assert check_run_id(run_id) == run_id
    assert load_config(None, [f"run_id={run_id}"]).run_id == run_id
    with open_run(RunConfig(run_id=run_id, output_dir=tmp_path)) as (cfg, run):
        assert run.path == tmp_path / run_id and cfg.run_id == run_id
    assert (tmp_path / run_id / "config.yaml").is_file()


def test_the_refusal_names_the_rule() -> None:
    with pytest.raises(ConfigError) as err:
        check_run_id("../../x")
    assert str(err.value) == "run id '../../x' must be a name (letters, digits, - _ .)"


@pytest.mark.parametrize("command", RUN_COMMANDS, ids=lambda c: " ".join(c[:2]))
@pytest.mark.parametrize("flag", ["--run-id", "--resume"])
def test_every_run_command_refuses_a_path_as_run_id(command: list[str], flag: str, tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    code, err = lbt_here(*command, flag, "../../x", "--output-dir", str(tmp_path / "runs"), "--no-progress")
    assert one_line(code, err) == "error: run id '../../x' must be a name (letters, digits, - _ .)"
    assert code == 2
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["runs"]  # nothing written anywhere

