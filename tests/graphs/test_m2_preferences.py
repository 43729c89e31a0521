"""M2's preference run, offline: LbT-scored samples become M2 and correctness-only pairs."""

from __future__ import annotations

from pathlib import Path

import pytest
from datasets import load_from_disk

from lbt_agents.config import M1Config, RunConfig
from lbt_agents.errors import DataError
from lbt_agents.m2 import arun_m2_prefs
from lbt_agents.testing import ScriptedChatModel
from tests.graphs.test_m1_scoring import ITEMS, classroom, student_reply, teacher_reply


def config(tmp_path: Path, **m2) -> RunConfig:
    return RunConfig(run_id="p", output_dir=tmp_path, classroom=classroom(students=1), m1=M1Config(pairs_per_tp=4),
                     m2=m2, task={"name": "gsm8k", "limit": 1}, max_concurrency=4)


def models():
    return {"teacher": [ScriptedChatModel(respond=teacher_reply)], "s0": [ScriptedChatModel(respond=student_reply)]}


async def test_pairs_prefer_the_sample_students_learned_from(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("lbt_agents.tasks.load_task", lambda cfg: ITEMS)
    result = await arun_m2_prefs(config(tmp_path), models=models(), progress=False)
    rows = load_from_disk(str(result.paths["m2"]))
    # Per TP: 1 good sample (correct, LbT 1) vs 3 bad ones (wrong, LbT 0): gap 1.0, 3 pairs.
    assert len(rows) == 2 * 3 and result.summary["pairs"] == {"m2": 6, "correctness": 6}
    assert all(r["chosen"][0]["content"].startswith("A good method") for r in rows)
    assert all(r["gap"] == 1.0 for r in rows)
    assert rows[0]["prompt"][-1]["role"] == "user" and "What is" in rows[0]["prompt"][-1]["content"]


async def test_no_pair_over_the_gap_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("lbt_agents.tasks.load_task", lambda cfg: ITEMS)
    with pytest.raises(DataError, match="no M2 preference pairs"):
        await arun_m2_prefs(config(tmp_path, min_gap=1.0), models=models(), progress=False)
    assert not (tmp_path / "p" / "preferences_m2").exists()
