"""Small finished runs (scripted chat models, no server) that the report tests read."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from lbt_agents import M1Config, RunConfig
from lbt_agents.config import TaskConfig
from lbt_agents.types import TeachingItem
from tests.graphs import test_m3_refinement as m3t
from tests.graphs.test_m1_scoring import add_problem, classroom, models

ITEMS: list[TeachingItem] = [
    TeachingItem(tp=add_problem(f"tp{i}", i, 3), eps=[add_problem(f"tp{i}/ep{j}", i + j, 2) for j in range(3)])
    for i in range(1, 7)
]


def m1_run(out: Path, run_id: str, *, task: str = "gsm8k", **m1) -> Path:
    from lbt_agents.m1 import arun_m1

    cfg = RunConfig(run_id=run_id, output_dir=out, classroom=classroom(students=2), m1=M1Config(pairs_per_tp=4, **m1),
                    task={"name": task, "limit": len(ITEMS)}, max_concurrency=8)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("lbt_agents.tasks.load_task", lambda c: ITEMS)
        return asyncio.run(arun_m1(cfg, models=models(students=2), progress=False)).run_dir


def m3_run(out: Path, run_id: str) -> Path:
    from lbt_agents.m3 import arun_m3

    data = out / "data" / "bigbench"
    data.mkdir(parents=True, exist_ok=True)
    examples = [{"input": f"Argument number {i} ({'valid' if i % 2 == 0 else 'invalid'}-shaped).",
                 "target_scores": {"valid": int(i % 2 == 0), "invalid": int(i % 2 == 1)}} for i in range(30)]
    (data / "formal_fallacies_syllogisms_negation.json").write_text(json.dumps({"examples": examples}))
    cfg = RunConfig(run_id=run_id, output_dir=out, classroom=m3t.agent_cfgs(2),
                    task=TaskConfig(name="formal_fallacies", data_dir=out / "data", options={"test_size": 10}),
                    m3=m3t.m3cfg(rounds=2, reasons=2, test_limit=6))
    scripted = {"teacher": [m3t.ScriptedChatModel(respond=m3t.teacher_factory())],
                "s0": [m3t.ScriptedChatModel(respond=m3t.student)], "s1": [m3t.ScriptedChatModel(respond=m3t.student)]}
    return asyncio.run(arun_m3(cfg, models=scripted)).run_dir


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """m1 (6 TPs x 4 pairs, 2 students), m1b (the same TPs, adaptive), m1-math (another task), m3."""
    out = tmp_path_factory.mktemp("report-runs")
    return {"m1": m1_run(out, "m1"), "m1b": m1_run(out, "m1b", adaptive={"enabled": True}),
            "m1-math": m1_run(out, "m1-math", task="math"), "m3": m3_run(out, "m3")}
