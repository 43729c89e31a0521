"""TP jobs with the Postgres checkpointer: a crash then resume asks no finished exam again, and a
finished TP's thread is deleted from the database."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lbt_agents.config import RunConfig
from lbt_agents.m1 import arun_m1
from lbt_agents.testing import ScriptedChatModel
from lbt_agents.tpjobs import thread_id
from tests.graphs.test_m1_scoring import ITEMS, classroom, student_reply, teacher_reply

pytestmark = pytest.mark.filterwarnings("ignore:coroutine 'arun_with_retry' was never awaited:RuntimeWarning")
EXAMS = len(ITEMS) * 4 * 3 * 2


async def test_crash_and_resume_on_postgres(tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    monkeypatch.setattr("lbt_agents.tasks.load_task", lambda cfg: ITEMS)
    budget, lock, asked = {"left": 30}, threading.Lock(), []

    def flaky(name: str):  # type: ignore[no-untyped-def]
        def reply(messages: list[dict[str, str]]) -> str:
            with lock:
                if budget["left"] <= 0:
                    raise ValueError("student crashed")
                budget["left"] -= 1
                asked.append((name, messages[-2]["content"], messages[-1]["content"]))
            return student_reply(messages)

        return reply

    def models() -> dict[str, list[ScriptedChatModel]]:
        return {"teacher": [ScriptedChatModel(respond=teacher_reply)],
                **{f"s{i}": [ScriptedChatModel(respond=flaky(f"s{i}"))] for i in range(2)}}

    cfg = RunConfig(run_id="pg", output_dir=tmp_path, classroom=classroom(students=2), m1={"pairs_per_tp": 4},
                    task={"name": "gsm8k"}, cache={"enabled": False}, max_concurrency=2,
                    checkpoint={"backend": "postgres", "url": postgres_url})
    with pytest.raises(ValueError, match="student crashed"):
        await arun_m1(cfg, models=models(), progress=False)
    before = set(asked)
    assert len(before) == 30

    budget["left"] = 10_000
    result = await arun_m1(cfg, resume="pg", models=models(), progress=False)
    again = asked[len(before):]
    assert not before & set(again)  # no finished exam asked again
    assert len(again) == EXAMS - 30
    assert result.summary["exams"] == EXAMS and result.summary["accuracy"]["max"] == 1.0
    with psycopg.connect(postgres_url) as conn:
        left = conn.execute("SELECT COUNT(*) FROM checkpoints WHERE thread_id = ANY(%s)",
                            ([thread_id("pg", it["tp"]["id"]) for it in ITEMS],)).fetchone()
    assert left == (0,)
