"""The TP-job runner (local executor): shards, the in-flight bound, resume by TP, deleted threads."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from lbt_agents.config import RunConfig
from lbt_agents.m1 import arun_m1
from lbt_agents.stub import StubServer
from lbt_agents.testing import ScriptedChatModel
from lbt_agents.tpjobs import ShardStore, shard_key, thread_id
from tests.server import _arithmetic as arithmetic

ITEMS = [arithmetic.item(f"tp{i}", 3 * i + 1, i + 2) for i in range(6)]
EXAMS_PER_TP = arithmetic.PAIRS * arithmetic.EPS * arithmetic.STUDENTS


@pytest.fixture(autouse=True)
def _items(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lbt_agents.tasks.load_task", lambda cfg: ITEMS)


def stub_config(base_url: str, tmp_path: Path, run_id: str, **executor: Any) -> RunConfig:
    return RunConfig.model_validate({**arithmetic.run_config(base_url), "output_dir": str(tmp_path), "run_id": run_id,
                                     "executor": executor})


async def test_each_tp_is_a_shard_and_shards_of_runs_concatenate(tmp_path: Path) -> None:
    from datasets import concatenate_datasets, load_from_disk

    from lbt_agents.tables import features

    with StubServer(respond=arithmetic.respond, models=(arithmetic.TEACHER_MODEL, arithmetic.STUDENT_MODEL)) as stub:
        one = await arun_m1(stub_config(stub.base_url, tmp_path, "one"), progress=False)
        two = await arun_m1(stub_config(stub.base_url, tmp_path, "two", max_tps_in_flight=1), progress=False)
        assert stub.requests == 2 * arithmetic.model_calls(len(ITEMS))
    shards = sorted(p.name for p in (one.run_dir / "shards").iterdir())
    assert shards == sorted(shard_key(it["tp"]["id"]) for it in ITEMS)
    for name in ("tps", "pairs", "exams"):
        parts = [load_from_disk(str(one.run_dir / "shards" / s / name)) for s in shards]
        parts.append(load_from_disk(str(two.run_dir / name)))
        assert all(p.features == features(name) for p in parts)
        joined = concatenate_datasets(parts)  # shards of one run and a whole other run
        assert len(joined) == 2 * len(load_from_disk(str(one.run_dir / name)))
    exams = load_from_disk(str(one.run_dir / "exams"))
    assert len(exams) == len(ITEMS) * EXAMS_PER_TP == one.summary["exams"]
    assert exams.unique("tp_id") == [it["tp"]["id"] for it in ITEMS]  # the run's table is in TP order
    assert one.summary["accuracy"] == two.summary["accuracy"] == {"greedy": 0.0, "sc": 0.0, "max": 1.0, "sum": 1.0,
                                                                  "avg": 1.0}
    assert one.results == two.results != {}
    # finished TPs live in their shards: their threads are gone
    rows = sqlite3.connect(str(one.run_dir / "checkpoints.sqlite")).execute("SELECT COUNT(*) FROM checkpoints")
    assert rows.fetchone() == (0,)


async def test_no_more_tps_in_flight_than_the_bound(tmp_path: Path) -> None:
    """Each TP's requests span its job's lifetime: at most 2 TPs have requests going at once."""
    spans: dict[str, list[float]] = {}
    lock = threading.Lock()
    questions = {problem["question"]: it["tp"]["id"] for it in ITEMS for problem in (it["tp"], *it["eps"])}

    def respond(body: dict[str, Any], index: int) -> str:
        tp = next(t for q, t in questions.items() if q in str(body["messages"][-1]["content"]))
        with lock:
            span = spans.setdefault(tp, [time.monotonic(), 0.0])
        time.sleep(0.002)
        reply = arithmetic.respond(body, index)
        with lock:
            span[1] = time.monotonic()
        return reply

    with StubServer(respond=respond, models=(arithmetic.TEACHER_MODEL, arithmetic.STUDENT_MODEL)) as stub:
        result = await arun_m1(stub_config(stub.base_url, tmp_path, "bound", max_tps_in_flight=2), progress=False)
    assert result.summary["tps"] == len(ITEMS) and len(spans) == len(ITEMS)
    edges = sorted([(start, 1) for start, _ in spans.values()] + [(end, -1) for _, end in spans.values()])
    alive, most = 0, 0
    for _, step in edges:
        alive += step
        most = max(most, alive)
    assert most == 2  # the bound, and reached (TPs do run side by side)


def test_tp_job_knobs_are_config_fields() -> None:
    cfg = RunConfig.model_validate({"executor": {"kind": "ray", "address": "10.0.0.1:6379", "max_tps_in_flight": 8}})
    assert (cfg.executor.kind, cfg.executor.address, cfg.executor.max_tps_in_flight) == ("ray", "10.0.0.1:6379", 8)
    assert "max_tps_in_flight" in yaml.safe_dump(RunConfig().model_dump(mode="json"))


async def test_resume_skips_finished_tps_and_finished_exams(tmp_path: Path) -> None:
    """One TP at a time; the students crash in the middle of the second TP's exams."""
    from tests.graphs.test_m1_scoring import student_reply, teacher_reply

    budget = {"left": EXAMS_PER_TP + 5}
    lock = threading.Lock()

    def flaky(messages: list[dict[str, str]]) -> str:
        with lock:
            if budget["left"] <= 0:
                raise ValueError("student crashed")
            budget["left"] -= 1
        return student_reply(messages)

    def models() -> dict[str, list[ScriptedChatModel]]:
        return {"teacher": [ScriptedChatModel(respond=teacher_reply)],
                **{f"s{i}": [ScriptedChatModel(respond=flaky)] for i in range(2)}}

    from tests.graphs.test_m1_scoring import classroom

    cfg = RunConfig(run_id="r", output_dir=tmp_path, classroom=classroom(students=2), m1={"pairs_per_tp": 4},
                    task={"name": "gsm8k"}, cache={"enabled": False}, max_concurrency=1,
                    executor={"max_tps_in_flight": 1})
    with pytest.raises(ValueError, match="student crashed"):
        await arun_m1(cfg, models=models(), progress=False)
    store = ShardStore(tmp_path / "r")
    assert [store.finished(it["tp"]["id"]) for it in ITEMS[:3]] == [True, False, False]
    conn = sqlite3.connect(str(tmp_path / "r" / "checkpoints.sqlite"))
    kept = conn.execute("SELECT thread_id, COUNT(*) FROM checkpoints GROUP BY thread_id").fetchall()
    assert kept == [(thread_id("r", "tp1"), 1)]  # the live thread keeps its latest checkpoint only
    conn.close()

    budget["left"] = 10_000
    again = models()
    result = await arun_m1(cfg, resume="r", models=again, progress=False)
    taught = [c for c in again["teacher"][0].calls]
    examined = [c for s in ("s0", "s1") for c in again[s][0].calls]
    assert len(taught) == (len(ITEMS) - 2) * 5  # tp0 (finished) and tp1 (taught) are not taught again
    assert len(examined) == len(ITEMS) * EXAMS_PER_TP - (EXAMS_PER_TP + 5)  # no finished exam again
    assert not any("What is 1 + 2?" in str(c) for c in taught + examined)  # nothing of tp0 (1 + 2)
    assert result.summary["exams"] == len(ITEMS) * EXAMS_PER_TP and result.summary["accuracy"]["max"] == 1.0
    conn = sqlite3.connect(str(tmp_path / "r" / "checkpoints.sqlite"))
    assert conn.execute("SELECT COUNT(*) FROM checkpoints WHERE thread_id = ?", (thread_id("r", "tp1"),)).fetchone() == (0,)


def test_a_shard_is_written_once(tmp_path: Path) -> None:
    """A retried TP job's second write keeps the first shard (nothing counted twice)."""
    result = {"tp_id": "a/b c", "question": "q", "gold": "1", "ep_ids": ["e"], "note": None, "greedy": None,
              "pairs": [], "selections": {}}
    store = ShardStore(tmp_path)
    assert not store.finished("a/b c")
    assert store.write(result, {"exams": 0, "first": True}, "r") is True
    assert store.write(result, {"exams": 0, "first": False}, "r") is False
    assert [s["first"] for s in store.stats(["a/b c", "missing"])] == [True]
    assert store.shard("a/b c").parent == store.path and "/" not in shard_key("a/b c")
    assert [p.name for p in store.path.iterdir()] == [shard_key("a/b c")]  # no temporary folder left


@pytest.mark.parametrize(("max_concurrency", "max_tps", "tps", "slots", "share"), [
    (256, 16, 181, 16, 16),  # the total split over the tasks in flight
    (4, 16, 181, 4, 1),  # never more tasks than requests: the total still holds
    (256, 16, 1, 1, 256),  # one TP left: it gets the whole total
    (10, 4, 181, 4, 2),
])
def test_ray_tasks_share_max_concurrency(max_concurrency: int, max_tps: int, tps: int, slots: int,
                                         share: int) -> None:
    from lbt_agents.tpjobs._ray import task_slots, worker_config

    cfg = RunConfig.model_validate({"max_concurrency": max_concurrency,
                                    "executor": {"kind": "ray", "max_tps_in_flight": max_tps}})
    assert task_slots(cfg, tps) == slots
    assert worker_config(cfg, slots).max_concurrency == share and slots * share <= max_concurrency
