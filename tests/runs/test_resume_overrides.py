"""--resume takes only overrides that do not change the work, the same way in every run command."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lbt_agents.config import RunConfig, load_config
from lbt_agents.errors import ConfigError
from lbt_agents.runs import RESUME_MAY_CHANGE, prepare_run, resume_config
from tests.runs._cli import RUN_COMMANDS, lbt_here, one_line, saved_run

WHERE_AND_HOW = [
    "classroom.teacher.base_url=http://127.0.0.1:11/v1",
    "classroom.students.0.base_url=[http://127.0.0.1:11/v1, http://127.0.0.1:12/v1]",
    "classroom.students.0.api_key_env=OTHER_KEY",
    "classroom.teacher.timeout_s=30",
    "classroom.students.0.max_retries=9",
    "max_concurrency=3",
    "serve.kv_cache_gib=8",
    "serve.startup_timeout_s=60",
    "checkpoint.url=postgresql://127.0.0.1/x",
]
THE_WORK = [
    ("m1.pairs_per_tp=8", "m1.pairs_per_tp"),
    ("task.limit=5", "task.limit"),
    ("task.name=math500", "task.name"),
    ("classroom.teacher.model=other", "classroom.teacher.model"),
    ("classroom.students.0.sampling.temperature=0.9", "classroom.students.0.sampling.temperature"),
    ("grading.timeout_s=9", "grading.timeout_s"),
    ("m3.rounds=9", "m3.rounds"),
    ("cache.enabled=false", "cache.enabled"),
    ("checkpoint.backend=memory", "checkpoint.backend"),
    ("m1={pairs_per_tp: 2}", "m1.pairs_per_tp"),
]


@pytest.mark.parametrize("override", WHERE_AND_HOW)
def test_where_and_how_may_change(override: str, tmp_path: Path) -> None:
    saved_run(tmp_path)
    cfg = resume_config(tmp_path, "r1", [override])
    assert cfg.model_dump() != load_config(tmp_path / "r1" / "config.yaml").model_dump()  # it did change something
    resumed, _ = prepare_run(cfg, resume="r1")
    on_disk = load_config(tmp_path / "r1" / "config.yaml")
    assert on_disk.model_dump() == resumed.model_dump()  # the new endpoint is what the run uses from now on


@pytest.mark.parametrize(("override", "field"), THE_WORK)
def test_the_work_may_not_change(override: str, field: str, tmp_path: Path) -> None:
    config = saved_run(tmp_path)
    before = config.read_text()
    with pytest.raises(ConfigError) as err:
        resume_config(tmp_path, "r1", [override])
    assert str(err.value) == f"--resume cannot change {field} (it changes the work); start a new run instead"
    assert config.read_text() == before


def test_the_same_value_is_no_change(tmp_path: Path) -> None:
    saved_run(tmp_path)
    assert resume_config(tmp_path, "r1", ["m1.pairs_per_tp=64"]).m1.pairs_per_tp == 64


def test_the_python_api_is_held_to_the_same_rule(tmp_path: Path) -> None:
    """A config built in Python for a resumed run (run_id == the run) may not change the work either."""
    config = saved_run(tmp_path)
    saved = load_config(config)
    changed = saved.model_copy(update={"m1": saved.m1.model_copy(update={"pairs_per_tp": 8})})
    with pytest.raises(ConfigError, match=r"cannot change m1\.pairs_per_tp"):
        prepare_run(changed, resume="r1")
    assert load_config(config).m1.pairs_per_tp == 64
    faster = saved.model_copy(update={"max_concurrency": 2})
    assert prepare_run(faster, resume="r1")[0].max_concurrency == 2
    # a config for another run id is not this run's: the saved one is used, as before
    other = RunConfig(output_dir=tmp_path, run_id="elsewhere")
    assert prepare_run(other, resume="r1")[0].m1.pairs_per_tp == 64


def test_the_allowed_fields_are_where_and_how() -> None:
    assert not any(p.startswith(("m1", "m2", "m3", "task", "grading", "cache", "sandbox")) for p in RESUME_MAY_CHANGE)


@pytest.mark.parametrize("command", RUN_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_run_command_refuses_a_change_of_work_on_resume(command: list[str], tmp_path: Path) -> None:
    """Today `lbt m1` accepts it and rewrites config.yaml; `lbt m3` and `lbt classroom` silently drop --set."""
    config = saved_run(tmp_path)
    before = config.read_text()
    code, err = lbt_here(*command, "--resume", "r1", "--output-dir", str(tmp_path), "--set", "m1.pairs_per_tp=8",
                         "--no-progress")
    assert one_line(code, err) == ("error: --resume cannot change m1.pairs_per_tp (it changes the work); "
                                   "start a new run instead")
    assert code == 2
    assert config.read_text() == before


@pytest.mark.parametrize(("flags", "field"), [(["--limit", "3"], "task.limit"), (["--task", "math500"], "task.name")])
def test_flags_are_held_to_the_rule_on_resume(flags: list[str], field: str, tmp_path: Path) -> None:
    saved_run(tmp_path)
    code, err = lbt_here("m1", "--resume", "r1", "--output-dir", str(tmp_path), *flags, "--no-progress")
    assert one_line(code, err) == f"error: --resume cannot change {field} (it changes the work); start a new run instead"


def test_run_id_and_resume_must_agree(tmp_path: Path) -> None:
    saved_run(tmp_path)
    code, err = lbt_here("m1", "--resume", "r1", "--run-id", "r2", "--output-dir", str(tmp_path), "--no-progress")
    assert "name different runs" in one_line(code, err)


@pytest.mark.parametrize("command", [["m3"], ["classroom"]], ids=lambda c: c[0])
def test_m3_resume_takes_the_set_overrides(command: list[str], tmp_path: Path) -> None:
    """Today `lbt m3 --resume RUN --set ...` drops the overrides: the resumed run still talks to the old server."""
    config = saved_run(tmp_path, m3={"k": 1, "minibatch": 1, "score_sample": 1, "test_limit": 1, "rounds": 1})
    code, err = lbt_here(*command, "--resume", "r1", "--output-dir", str(tmp_path), "--set", "max_concurrency=3",
                         "--set", "classroom.teacher.base_url=http://127.0.0.1:10/v1", "--no-progress")
    assert code != 0  # nothing serves either address
    saved = yaml.safe_load(config.read_text())
    assert saved["max_concurrency"] == 3
    assert saved["classroom"]["teacher"]["base_url"] == "http://127.0.0.1:10/v1"
    assert "127.0.0.1:10" in err  # the endpoint check tried the new address
