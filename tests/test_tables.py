"""Flat result tables: one row per TP, pair and exam, with explicit features, so runs concatenate."""

from __future__ import annotations

from pathlib import Path

import pytest
from datasets import concatenate_datasets, load_from_disk

from lbt_agents import M1Config, RunConfig
from lbt_agents.m1 import arun_m1
from tests.graphs.test_m1_scoring import ITEMS, classroom, models


def cfg(tmp_path: Path, run_id: str, **m1) -> RunConfig:
    return RunConfig(run_id=run_id, output_dir=tmp_path, classroom=classroom(students=1),
                     m1=M1Config(pairs_per_tp=4, **m1), task={"name": "gsm8k", "limit": 2}, max_concurrency=4)


async def test_two_runs_tables_concatenate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lbt_agents.tasks.load_task", lambda c: ITEMS)
    full = await arun_m1(cfg(tmp_path, "full"), models=models(students=1), progress=False)
    # adaptive: notes and stand-ins (strings) where the full run has nulls
    adaptive = await arun_m1(cfg(tmp_path, "adaptive", adaptive={"enabled": True}), models=models(students=1),
                             progress=False)
    for name, per_run in (("tps", 2), ("pairs", 8)):
        both = concatenate_datasets([load_from_disk(str(r.run_dir / name)) for r in (full, adaptive)])
        assert len(both) == 2 * per_run and set(both["run_id"]) == {"full", "adaptive"}
    exams = concatenate_datasets([load_from_disk(str(r.run_dir / "exams")) for r in (full, adaptive)])
    assert len(exams) == full.summary["exams"] + adaptive.summary["exams"]

    pairs = load_from_disk(str(full.run_dir / "pairs")).to_list()
    good = [p for p in pairs if p["tp_id"] == "tp1" and p["correct"]]
    assert len(good) == 1 and good[0]["lbt"] == 1.0 and set(good[0]["chosen_by"]) == {"max", "sum", "avg"}
    wrong = [p for p in pairs if p["tp_id"] == "tp1" and not p["correct"]]
    assert [p["votes"] for p in wrong] == [3, 3, 3]
    assert sum("sc" in p["chosen_by"] for p in wrong) == 1  # SC picks the majority's first pair
    tps = load_from_disk(str(full.run_dir / "tps")).to_list()
    assert {t["tp_id"]: (t["sc_correct"], t["max_correct"]) for t in tps} == {"tp1": (False, True), "tp2": (False, True)}
    stand_ins = [p for p in load_from_disk(str(adaptive.run_dir / "pairs")).to_list() if p["scored_as"]]
    assert stand_ins and all(p["exams_taken"] == 0 for p in stand_ins)


def test_a_run_without_exams_still_writes_empty_tables(tmp_path: Path) -> None:
    from lbt_agents.tables import write_tables

    result = {"tp_id": "t", "question": "q", "gold": "1", "ep_ids": [], "note": "unanimous", "greedy": None,
              "pairs": [], "selections": {}}
    paths = write_tables(tmp_path, {"t": result}, "r")
    assert set(paths) == {"tps"} and not (tmp_path / "exams").exists()
    assert len(load_from_disk(str(paths["tps"]))) == 1
