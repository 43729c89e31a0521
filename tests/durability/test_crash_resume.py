"""Resume without the call cache: every finished exam (and taught TP) is in the checkpoint as soon as it
finishes, so after kill -9 (or a failure in the same process) a resume asks for none of them again."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.durability import _harness as h
from tests.durability import _m1_child as child

# LangGraph cancels the step's tasks that never started when one fails; their coroutines were never awaited.
pytestmark = pytest.mark.filterwarnings("ignore:coroutine 'arun_with_retry' was never awaited:RuntimeWarning")

HALF = child.EXAMS // 2 - 8  # a crash in the middle of the exams, not on a wave's edge


def test_kill_9_during_exams_resends_no_finished_exam(tmp_path: Path, reference: dict[str, Any]) -> None:
    proc = h.start(tmp_path, "--block-student-after", str(HALF))
    try:
        # The student answers HALF exams, then hangs; each answered exam must reach the checkpoint.
        landed = h.wait_until(lambda: len(h.saved_exam_keys(tmp_path)) >= HALF, 60, proc)
    finally:
        h.kill(proc)
    answered = set(h.events(tmp_path, "answered"))
    assert len(answered) == HALF
    assert landed and h.saved_exam_keys(tmp_path) == answered
    asked_before = len(h.events(tmp_path, "asked"))

    h.finish(h.start(tmp_path, "--resume"))
    asked_again = h.events(tmp_path, "asked")[asked_before:]
    assert not answered & set(asked_again)  # 0 finished exams requested again
    assert Counter(asked_again) == Counter(set(h.events(tmp_path, "answered")) - answered)
    assert len(asked_again) == child.EXAMS - HALF
    assert len(h.events(tmp_path, "asked", "teacher")) == child.TEACHER_CALLS  # none after the kill
    assert h.results(tmp_path) == reference


def test_kill_9_during_teaching_keeps_the_finished_tps(tmp_path: Path, reference: dict[str, Any]) -> None:
    # One task at a time: tp0 is taught, then the teacher hangs on tp1.
    proc = h.start(tmp_path, "--block-teacher-except", "tp0", "--max-concurrency", "1")
    try:
        landed = h.wait_until(
            lambda: sum(p["tp_id"] == "tp0" for p in h.saved(tmp_path, "pairs").values()) == child.PAIRS, 60, proc
        )
    finally:
        h.kill(proc)
    assert landed
    taught = set(h.events(tmp_path, "answered", "teacher"))
    assert len(taught) == child.PAIRS + 1 and all(k.startswith("teacher:tp0:") for k in taught)
    asked_before = len(h.events(tmp_path, "asked", "teacher"))

    h.finish(h.start(tmp_path, "--resume"))
    asked_again = h.events(tmp_path, "asked", "teacher")[asked_before:]
    assert not taught & set(asked_again)
    assert len(asked_again) == (child.TPS - 1) * (child.PAIRS + 1)
    assert h.results(tmp_path) == reference


def _db_is_free(out: Path) -> bool:
    """No connection holds the checkpoint database: a writer gets it at once."""
    conn = sqlite3.connect(str(out / "t" / "checkpoints.sqlite"), timeout=0)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        conn.rollback()
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def _others() -> set[asyncio.Task[Any]]:
    return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]


async def test_failure_then_resume_in_the_same_process(
    tmp_path: Path, reference: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lbt_agents.m1 import arun_m1

    monkeypatch.setattr("lbt_agents.tasks.load_task", lambda cfg: child.ITEMS)
    cfg = child.run_config(tmp_path)
    crashing = child.Scripts(tmp_path / "requests.log", fail_student_after=HALF)
    with pytest.raises(ValueError, match="student crashed"):
        await arun_m1(cfg, models=crashing.models(), progress=False)
    # The error surfaced only after the graph stopped and the checkpointer closed.
    assert not _others()
    assert _db_is_free(tmp_path)
    finished = set(h.events(tmp_path, "answered"))
    assert h.saved_exam_keys(tmp_path) == finished and len(finished) == HALF
    asked_before = len(h.events(tmp_path, "asked"))

    healthy = child.Scripts(tmp_path / "requests.log")
    result = await arun_m1(cfg, resume=child.RUN_ID, models=healthy.models(), progress=False)
    asked_again = h.events(tmp_path, "asked")[asked_before:]
    assert not finished & set(asked_again)
    assert len(asked_again) == child.EXAMS - HALF
    assert json.loads(json.dumps(result.results, sort_keys=True)) == reference


async def test_a_failing_hook_stops_the_graph_before_the_error_surfaces(
    tmp_path: Path, reference: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lbt_agents.m1 import M1_GRAPH
    from lbt_agents.runner import arun_graph

    monkeypatch.setattr("lbt_agents.tasks.load_task", lambda cfg: child.ITEMS)
    cfg = child.run_config(tmp_path)
    scripts = child.Scripts(tmp_path / "requests.log", delay_s=0.01)
    seen: list[str] = []

    def hook(update: dict[str, Any], run_dir: Path) -> None:
        seen.extend(update)
        if seen.count("exam") == 5:
            raise RuntimeError("the display broke")

    with pytest.raises(RuntimeError, match="display broke"):
        await arun_graph(M1_GRAPH, cfg, models=scripts.models(), on_update=hook)
    assert not _others()  # no exam still running behind the error
    asked = len(h.events(tmp_path, "asked"))
    await asyncio.sleep(0.2)
    assert len(h.events(tmp_path, "asked")) == asked
    assert _db_is_free(tmp_path)
    finished = h.saved_exam_keys(tmp_path, thread=child.RUN_ID)  # the generic runner: one thread per run
    assert len(finished) >= 5

    result = await arun_graph(M1_GRAPH, cfg, resume=child.RUN_ID, models=child.Scripts(tmp_path / "requests.log").models())
    assert not finished & set(h.events(tmp_path, "asked")[asked:])
    assert json.loads(json.dumps(result.state["results"], sort_keys=True)) == reference
