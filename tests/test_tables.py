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


async def test_runs_with_missing_answers_and_shards_concatenate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run where the teacher does not answer one TP (answers, groups, selections null; a note) concatenates
    with one where it always answers,
    and ``read_table`` reads a table written as several shards."""
    import shutil

    from datasets import Dataset

    from lbt_agents.tables import features, read_table
    from lbt_agents.testing import ScriptedChatModel

    monkeypatch.setattr("lbt_agents.tasks.load_task", lambda c: ITEMS)
    full = await arun_m1(cfg(tmp_path, "full"), models=models(students=1), progress=False)
    half = models(students=1)
    half["teacher"] = [ScriptedChatModel(respond=lambda m, p: "no idea" if "10" in m[-1]["content"] else
                                         "A good method: add the numbers. [[Final Answer]]: 5")]
    mixed = await arun_m1(cfg(tmp_path, "mixed"), models=half, progress=False)
    pairs = read_table(mixed.run_dir, "pairs").to_list()
    assert {p["group"] for p in pairs if p["tp_id"] == "tp2"} == {None}  # no answer: no group
    assert {p["group"] for p in pairs if p["tp_id"] == "tp1"} == {0}
    tps = {t["tp_id"]: t for t in read_table(mixed.run_dir, "tps").to_list()}
    assert tps["tp2"]["note"] and tps["tp1"]["note"] is None and tps["tp2"]["sc_answer"] is None
    for name in ("tps", "pairs"):
        both = concatenate_datasets([read_table(r.run_dir, name) for r in (full, mixed)])
        assert len(both) == len(read_table(full.run_dir, name)) + len(read_table(mixed.run_dir, name))

    # the same table as two shards (a folder of dataset folders) reads back whole, in order
    whole = read_table(full.run_dir, "pairs")
    sharded = tmp_path / "sharded"
    for i, rows in enumerate((whole.select(range(3)), whole.select(range(3, len(whole))))):
        Dataset.from_list(rows.to_list(), features=features("pairs")).save_to_disk(str(sharded / "pairs" / f"{i:03d}"))
    (sharded / "pairs" / ".004.partial").mkdir()  # a shard being written is not read
    assert read_table(sharded, "pairs").to_list() == whole.to_list()
    assert read_table(sharded, "exams") is None

    # a run in progress: only its finished TPs' shards, <run>/shards/<tp>/<table>
    running = tmp_path / "running"
    for tp in ("tp1", "tp2"):
        rows = [r for r in whole.to_list() if r["tp_id"] == tp]
        Dataset.from_list(rows, features=features("pairs")).save_to_disk(str(running / "shards" / tp / "pairs"))
    (running / "shards" / ".tp3.tmp" / "pairs").mkdir(parents=True)  # a shard being written
    assert read_table(running, "pairs").to_list() == whole.to_list()
    shutil.rmtree(sharded)
