"""The generated reasoning-gym task, and the quickstart config that runs it (offline, no ../shared)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lbt_agents.config import TaskConfig, load_config
from lbt_agents.errors import ConfigError
from lbt_agents.m1 import arun_m1
from lbt_agents.tasks import load_task
from lbt_agents.testing import ScriptedChatModel

QUICKSTART = Path(__file__).resolve().parents[2] / "experiments" / "configs" / "quickstart.yaml"
EQUATIONS = {"family": "simple_equations", "config": {"min_terms": 2, "max_terms": 2, "max_value": 20}}


def test_equations_are_generated_deterministically() -> None:
    cfg = TaskConfig(name="reasoning_gym", limit=5, eps_per_tp=2, options=EQUATIONS)
    items = load_task(cfg)
    assert len(items) == 5
    for it in items:
        assert re.search(r"[a-z]", it["tp"]["question"]) and re.fullmatch(r"-?\d+", it["tp"]["answer"])
        assert len(it["eps"]) == 2 and it["tp"]["id"] not in {ep["id"] for ep in it["eps"]}
        assert {p["kind"] for p in [it["tp"], *it["eps"]]} == {"math"}
    assert load_task(cfg) == items
    other = load_task(cfg.model_copy(update={"seed": 1}))
    assert [it["tp"]["question"] for it in other] != [it["tp"]["question"] for it in items]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"family": "no_such_family"}, "unknown family 'no_such_family'"),
        ({"family": "simple_equations", "config": {"bogus": 1}}, "rejects config"),
        ({"family": "simple_equations", "config": [1]}, "config must be a mapping"),
        ({"family": "simple_equations", "size": 1}, "size must be an integer >= 2"),
        ({"templates": "ok"}, "unknown option"),
    ],
)
def test_bad_options_are_config_errors(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_task(TaskConfig(name="reasoning_gym", options=options))


def _last_problem(messages: list[dict[str, str]]) -> str:
    return messages[-1]["content"].removeprefix("Problem: ").strip()


async def test_quickstart_runs_offline_without_reference_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The quickstart config as shipped: its task builds in a folder with no ../shared beside it, its prompts
    ask for the answer line the examiner reads, and M1 selects a right pair wherever the teacher wrote one."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LBT_DATA_DIR", raising=False)
    assert not Path("../shared/data").exists()
    cfg = load_config(QUICKSTART, [f"output_dir={tmp_path / 'runs'}"])
    assert {cfg.classroom.teacher.base_url, *(s.base_url for s in cfg.classroom.students)} == {"embedded"}
    items = load_task(cfg.task)
    gold = {p["question"]: int(p["answer"]) for it in items for p in [it["tp"], *it["eps"]]}
    samples = iter(range(10**6))

    def teacher(messages: list[dict[str, str]], params: dict) -> str:
        assert "one short line per step" in messages[0]["content"]
        wrong = params.get("temperature") != 0.0 and next(samples) % 2  # half the sampled pairs are wrong
        return f"Isolate the variable.\n[[Final Answer]]: {gold[_last_problem(messages)] + bool(wrong)}"

    def student(messages: list[dict[str, str]]) -> str:
        tp, teaching = messages[1]["content"].removeprefix("Problem: ").strip(), messages[2]["content"]
        learned = teaching.endswith(f": {gold[tp]}")  # only a right pair teaches the method
        return f"Same method.\n[[Final Answer]]: {gold[_last_problem(messages)] + (not learned)}"

    models = {"teacher": [ScriptedChatModel(respond=teacher)], "student": [ScriptedChatModel(respond=student)]}
    result = await arun_m1(cfg, models=models, progress=False)
    summary = result.summary
    assert summary["tps"] == len(items) == cfg.task.limit
    assert summary["exams"] == cfg.task.limit * cfg.m1.pairs_per_tp * cfg.task.eps_per_tp  # every pair answered
    assert summary["accuracy"]["greedy"] == 1.0 and summary["accuracy"]["max"] == 1.0
    for res in result.results.values():
        assert {p["correct"] for p in res["pairs"]} == {True, False}
        assert all(p["lbt"] == (1.0 if p["correct"] else 0.0) for p in res["pairs"])
