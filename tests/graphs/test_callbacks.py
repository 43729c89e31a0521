"""Every model call of the M1 graph is visible to callbacks, ``stream_mode="messages"`` and ``astream_events``.

The classroom talks to the stub OpenAI-compatible server through real ``ChatOpenAI`` clients (a run
config whose agents point at the stub), so what the stub received is what the agents sent.  With the
default M1 path, the first exam of each pair streams, the other exams and the greedy answer do not, and
the teacher's samples come in one request with ``n``: all three request paths are counted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler

from lbt_agents import Classroom, load_config, m1_graph
from lbt_agents.stub import StubServer
from tests.server._arithmetic import (
    EPS,
    PAIRS,
    STUDENTS,
    item,
    model_calls,
    respond,
    write_run_config,
)

ITEMS = [item("tp1", 2, 3), item("tp2", 10, 5)]
# 2 TPs x (1 teacher request for 4 samples + 1 greedy) + 2 TPs x 4 pairs x 3 EPs x 2 students = 4 + 48 = 52 requests.
CALLS = model_calls(len(ITEMS))
TEACHER_CALLS = len(ITEMS) * 2
EXAM_CALLS = len(ITEMS) * PAIRS * EPS * STUDENTS


class CountingHandler(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.starts = 0
        self.ends = 0

    async def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.starts += 1

    async def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.ends += 1


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer(respond=respond, record_bodies=True) as s:
        yield s


@pytest.fixture
def setup(stub: StubServer, tmp_path: Path) -> tuple[Any, Classroom]:
    cfg = load_config(write_run_config(tmp_path / "run.yaml", stub.base_url))
    classroom = Classroom.from_config(cfg.classroom, task=cfg.task.name, max_concurrency=cfg.max_concurrency)
    return m1_graph(cfg.m1), classroom


def sent(classroom: Classroom) -> int:
    return sum(u["requests"] for u in classroom.meter.as_dict().values())


async def test_a_callback_handler_sees_every_call(stub: StubServer, setup: tuple[Any, Classroom]) -> None:
    graph, classroom = setup
    handler = CountingHandler()
    out = await graph.ainvoke({"items": ITEMS}, {"callbacks": [handler]}, context=classroom)

    assert handler.starts == handler.ends == stub.requests == sent(classroom) == CALLS  # 52 of 52
    streamed = sum(bool(body.get("stream")) for body in stub.bodies)
    assert 0 < streamed < CALLS  # both paths: astream (a prefix's first call) and ainvoke (the rest, greedy)
    assert [body.get("n", 1) for body in stub.bodies].count(PAIRS) == len(ITEMS)  # and agenerate (teacher, n)
    assert all(r["selections"]["max"]["correct"] for r in out["results"].values())


async def test_stream_mode_messages_streams_every_call(stub: StubServer, setup: tuple[Any, Classroom]) -> None:
    graph, classroom = setup
    by_node: dict[str, set[str]] = defaultdict(set)
    async for message, metadata in graph.astream({"items": ITEMS}, context=classroom, stream_mode="messages"):
        assert message.id, "a streamed message without an id"
        by_node[metadata["langgraph_node"]].add(message.id)

    messages = set().union(*by_node.values())
    assert len(messages) == stub.requests == CALLS  # 52 of 52
    assert {node: len(ids) for node, ids in by_node.items()} == {"teach": TEACHER_CALLS, "exam": EXAM_CALLS}


async def test_astream_events_sees_every_call(stub: StubServer, setup: tuple[Any, Classroom]) -> None:
    graph, classroom = setup
    starts, ends = 0, 0
    async for event in graph.astream_events({"items": ITEMS}, context=classroom, version="v2"):
        starts += event["event"] == "on_chat_model_start"
        ends += event["event"] == "on_chat_model_end"
    assert starts == ends == stub.requests == CALLS  # 52 of 52
