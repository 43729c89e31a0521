"""Profiles are named config defaults that lie under the run's own settings."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lbt_agents.config import RunConfig, load_config
from lbt_agents.errors import ConfigError
from lbt_agents.profiles import available, profile_defaults, under


def test_default_and_paper_ship() -> None:
    assert {"default", "paper"} <= set(available())


def test_unknown_profile_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown profile 'nope'; known profiles: .*paper"):
        load_config(overrides=["profile=nope"])
    with pytest.raises(ConfigError, match="unknown profile"):
        profile_defaults("nope")


def test_run_settings_override_profile_defaults() -> None:
    defaults = {"m1": {"pairs_per_tp": 256, "reps_per_ep": 3}, "max_concurrency": 8}
    merged = under(defaults, {"m1": {"pairs_per_tp": 4}, "task": {"limit": 2}})
    assert merged == {"m1": {"pairs_per_tp": 4, "reps_per_ep": 3}, "max_concurrency": 8, "task": {"limit": 2}}
    assert defaults == {"m1": {"pairs_per_tp": 256, "reps_per_ep": 3}, "max_concurrency": 8}  # not mutated


def test_python_built_config_gets_the_profile() -> None:
    cfg = RunConfig(profile="paper")
    assert cfg.profile == "paper"
    assert RunConfig().profile == "default"


def test_cli_refuses_an_unknown_profile_before_any_work(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lbt_agents", "m1", "--profile", "nope", "--output-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "unknown profile 'nope'" in lines[0], proc.stderr
    assert not any(tmp_path.iterdir())


def test_a_profile_list_of_one_mapping_lies_under_every_item_of_the_runs_list() -> None:
    template = {"students": [{"role": "student", "sampling": {"temperature": 0.7, "top_k": 20}}], "modes": ["sc"]}
    data = {"students": [{"name": "a"}, {"name": "b", "sampling": {"temperature": 0.0}}], "modes": ["max", "sum"]}
    assert under(template, data) == {
        "students": [{"role": "student", "sampling": {"temperature": 0.7, "top_k": 20}, "name": "a"},
                     {"role": "student", "sampling": {"temperature": 0.0, "top_k": 20}, "name": "b"}],
        "modes": ["max", "sum"],  # lists of anything else are replaced
    }
    assert under(template, {})["students"] == template["students"]


def test_the_quickstart_keeps_the_default_rules() -> None:
    from pathlib import Path

    from lbt_agents.agents._layouts import DefaultLayout, layout
    from lbt_agents.runner import examiner_for, needs_prefill

    cfg = load_config(Path(__file__).resolve().parents[2] / "experiments" / "configs" / "quickstart.yaml")
    assert (cfg.profile, cfg.classroom.prompts, cfg.grading.math, cfg.m1.tie_break) == (
        "default", "default", "verify", "first_seen")
    assert isinstance(layout(cfg.classroom.prompts, "math"), DefaultLayout) and not needs_prefill(cfg)
    assert type(examiner_for(cfg).grader("math")).__name__ == "MathGrader"
    assert cfg.classroom.teacher.sampling.top_k is None and cfg.m1.pairs_per_tp == 6
