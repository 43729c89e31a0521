"""The request path against the stub server: the light OpenAI-compatible chat model, teacher samples
in one request with ``n`` (cached one by one, with a fallback), replica routing by pair, the order
exams go out in, and grading that never stalls requests."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import HumanMessage, SystemMessage

from lbt_agents import Classroom, m1_graph
from lbt_agents._openai_chat import BadReplyError, EndpointStatusError, OpenAIChat
from lbt_agents.cache import CallCache
from lbt_agents.config import AgentConfig, ClassroomConfig, M1Config, Sampling
from lbt_agents.llm import ChatAgent
from lbt_agents.stub import StubServer

MSGS = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "teach me"}]


class Starts(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.starts = 0

    async def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.starts += 1


def sample_text(body: dict[str, Any], i: int) -> str:
    return f"seed {body.get('seed')} choice {i} [[Final Answer]]: 5"


# -- OpenAIChat ----------------------------------------------------------------------------------------


async def test_openai_chat_invokes_streams_and_returns_n_choices() -> None:
    handler = Starts()
    with StubServer(respond=sample_text, record_bodies=True) as stub:
        chat = OpenAIChat(model="m", base_url=stub.base_url, callbacks=[handler])
        reply = await chat.ainvoke([SystemMessage("rules"), HumanMessage("hi")], max_tokens=3, seed=7, temperature=0.5)
        chunks = [c async for c in chat.astream("one two", seed=1)]
        result = await chat.agenerate([[HumanMessage("again")]], n=3, seed=2)
        await chat.aclose()
        bodies = stub.bodies
    assert reply.content == "seed 7 choice" and reply.response_metadata["finish_reason"] == "length"
    assert reply.usage_metadata["output_tokens"] == 3 and reply.usage_metadata["input_tokens"] > 0
    streamed = chunks[0]
    for chunk in chunks[1:]:
        streamed += chunk
    assert streamed.content == sample_text({"seed": 1}, 0) and streamed.usage_metadata["output_tokens"] == 7
    assert [g.text for g in result.generations[0]] == [sample_text({"seed": 2}, i) for i in range(3)]
    assert handler.starts == len(bodies) == 3  # one callback run per request
    assert bodies[0]["messages"] == [{"role": "system", "content": "rules"}, {"role": "user", "content": "hi"}]
    assert (bodies[0]["max_tokens"], bodies[0]["temperature"], bodies[2]["n"]) == (3, 0.5, 3)
    assert bodies[1]["stream"] is True and bodies[1]["stream_options"] == {"include_usage": True}


async def test_openai_chat_names_error_statuses_and_bad_bodies() -> None:
    with StubServer(fail_first=1, fail_status=503) as stub:
        chat = OpenAIChat(model="m", base_url=stub.base_url)
        with pytest.raises(EndpointStatusError) as err:
            await chat.ainvoke("hi")
        assert err.value.status_code == 503 and "injected fault" in str(err.value)
        assert (await chat.ainvoke("hi")).content == "hi"
        await chat.aclose()
    from tests.runs._servers import garbage_server

    with garbage_server(("m",), b'{"choices": []}') as (url, _):
        chat = OpenAIChat(model="m", base_url=url)
        with pytest.raises(BadReplyError):
            await chat.ainvoke("hi")
        await chat.aclose()


# -- teacher samples in one request ----------------------------------------------------------------------


def agent_config(url: str | list[str], **sampling: Any) -> AgentConfig:
    return AgentConfig(name="teacher", model="m", base_url=url, sampling=Sampling(**sampling))


async def test_n_samples_go_in_one_request_and_a_resume_asks_only_for_the_missing(tmp_path: Path) -> None:
    cache = CallCache(tmp_path / "calls.sqlite")
    with StubServer(respond=sample_text, record_bodies=True) as stub:
        first = ChatAgent(agent_config(stub.base_url, n=2, seed=10, temperature=0.8), cache=cache)
        two = await first.sample(MSGS, key="teach:tp1")
        agent = ChatAgent(agent_config(stub.base_url, n=4, seed=10, temperature=0.8), cache=cache)
        four = await agent.sample(MSGS, key="teach:tp1")
        again = await agent.sample(MSGS, key="teach:tp1")
        await first.aclose()
        await agent.aclose()
        bodies = stub.bodies
    assert [b.get("n") for b in bodies] == [2, 2]  # two requests: samples 0-1, then only 2-3
    assert [b["seed"] for b in bodies] == [10, 12]
    assert [r.text for r in two] == [sample_text({"seed": 10}, i) for i in range(2)]
    assert [r.text for r in four] == [r.text for r in two] + [sample_text({"seed": 12}, i) for i in range(2)]
    assert [r.cached for r in four] == [True, True, False, False] and all(r.cached for r in again)
    assert [r.text for r in again] == [r.text for r in four]
    usage = agent.meter.of("teacher")
    assert (usage.requests, usage.cache_hits) == (1, 6)
    assert sum(r.completion_tokens for r in four[2:]) == 2 * 7  # the request's 14 tokens shared out
    cache.close()


@contextlib.contextmanager
def one_choice_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An OpenAI-compatible server that ignores ``n`` (always one choice); yields its URL and the bodies."""
    from aiohttp import web

    bodies: list[dict[str, Any]] = []

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        bodies.append(body)
        text = f"only one (seed {body.get('seed')})"
        return web.json_response({
            "id": "x", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
        })  # fmt: skip

    loop, ready, holder = asyncio.new_event_loop(), threading.Event(), {}

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["port"], holder["runner"] = runner.addresses[0][1], runner
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(main()), loop.run_forever()), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield f"http://127.0.0.1:{holder['port']}/v1", bodies
    finally:
        asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


async def test_a_backend_that_ignores_n_gets_one_request_per_missing_sample() -> None:
    with one_choice_server() as (url, bodies):
        agent = ChatAgent(agent_config(url, n=3, seed=0))
        replies = await agent.sample(MSGS, key="teach:tp1")
        await agent.aclose()
    assert [r.text for r in replies] == ["only one (seed 0)", "only one (seed 1)", "only one (seed 2)"]
    assert [b.get("n") for b in bodies] == [3, None, None] and agent.meter.of("teacher").requests == 3


# -- replicas, order, grading ------------------------------------------------------------------------------


def problem(pid: str, question: str, answer: str = "5") -> dict[str, Any]:
    return {"id": pid, "question": question, "answer": answer, "kind": "math"}


def items(tps: int, ep_answer: str = "5") -> list[dict[str, Any]]:
    return [{"tp": problem(f"tp{t}", f"teach {t}"), "eps": [problem(f"tp{t}/ep{e}", f"exam {e}", ep_answer) for e in range(3)]}
            for t in range(tps)]  # fmt: skip


def classroom(teacher_urls: list[str], student_urls: list[str], students: int = 1, concurrency: int = 64) -> Classroom:
    cfg = ClassroomConfig(
        teacher=AgentConfig(name="teacher", model="t", base_url=teacher_urls, sampling=Sampling(n=4, seed=0)),
        students=[AgentConfig(name=f"s{i}", model=f"m{i}", base_url=student_urls, sampling=Sampling(temperature=0.0))
                  for i in range(students)],
    )  # fmt: skip
    return Classroom.from_config(cfg, max_concurrency=concurrency)


def exam_bodies(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for b in bodies if len(b["messages"]) == 4]  # system, TP, the pair's teaching, EP


async def test_all_exams_of_a_pair_go_to_one_replica() -> None:
    with StubServer(respond=sample_text, record_bodies=True) as a, StubServer(respond=sample_text, record_bodies=True) as b:
        room = classroom([a.base_url, b.base_url], [a.base_url, b.base_url])
        await m1_graph(M1Config(pairs_per_tp=4, reps_per_ep=2)).ainvoke({"items": items(3)}, context=room)
        await room.aclose()
        seen = {name: stub.bodies for name, stub in (("a", a), ("b", b))}
    where: dict[str, set[str]] = {}
    for name, bodies in seen.items():
        for body in exam_bodies(bodies):
            where.setdefault(body["messages"][1]["content"] + body["messages"][2]["content"], set()).add(name)
        for body in bodies:
            if len(body["messages"]) == 2:  # the teacher's requests: routed by TP
                where.setdefault(body["messages"][1]["content"], set()).add(name)
    assert len(where) == 3 * 4 + 3  # 12 pairs' exams and 3 TPs' teacher requests
    assert all(len(replicas) == 1 for replicas in where.values()), where
    assert sum(len(exam_bodies(bodies)) for bodies in seen.values()) == 3 * 4 * 3 * 2


@pytest.mark.parametrize("concurrency", [1, 64])
async def test_the_exams_sharing_a_prefix_go_out_together(concurrency: int) -> None:
    with StubServer(respond=sample_text, record_bodies=True) as stub:
        room = classroom([stub.base_url], [stub.base_url], students=2, concurrency=concurrency)
        await m1_graph(M1Config(pairs_per_tp=3, reps_per_ep=2)).ainvoke({"items": items(2)}, context=room)
        await room.aclose()
        bodies = exam_bodies(stub.bodies)
    groups = [(b["model"], b["messages"][1]["content"], b["messages"][2]["content"]) for b in bodies]
    assert len(bodies) == 2 * 3 * 2 * 3 * 2 and len(set(groups)) == 2 * 3 * 2
    firsts = [g for b, g in zip(bodies, groups) if b.get("stream")]  # each prefix's first exam streams...
    assert sorted(firsts) == sorted(set(groups))
    for g in set(groups):  # ...before any other exam with that prefix
        assert min(i for i, b in enumerate(bodies) if groups[i] == g and not b.get("stream")) > groups.index(g)
    if concurrency == 1:  # one at a time: then the other 5 of each prefix go out in one run
        rest = [g for b, g in zip(bodies, groups) if not b.get("stream")]
        runs = [g for i, g in enumerate(rest) if i == 0 or rest[i - 1] != g]
        assert len(runs) == len(set(groups)) and all(rest.count(g) == 5 for g in runs)


async def test_a_slow_grade_does_not_stop_other_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each exam's answer needs a symbolic check; the checks are held until every exam request is out."""
    import lbt_agents.grading.math as math_grading
    from lbt_agents.grading._bounded import SymbolicResult

    held: list[concurrent.futures.Future] = []
    lock = threading.Lock()

    def submit(gold: str, pred: str, timeout_s: float) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        with lock:
            held.append(future)
        return future

    def release() -> None:
        with lock:
            for future in held:
                if not future.done():
                    future.set_result(SymbolicResult(True))

    monkeypatch.setattr(math_grading._MEMORY, "submit", submit)
    monkeypatch.setattr(math_grading._MEMORY, "recall", lambda *a, **k: None)
    exams = 1 * 4 * 3 * 2

    def student(body: dict[str, Any], i: int) -> str:
        return "[[Final Answer]]: (x+1)^2" if len(body["messages"]) == 4 else "[[Final Answer]]: 5"

    with StubServer(respond=student) as stub:
        room = classroom([stub.base_url], [stub.base_url], concurrency=1)  # one request at a time
        run = asyncio.create_task(m1_graph(M1Config(pairs_per_tp=4, reps_per_ep=2)).ainvoke(
            {"items": items(1, ep_answer="x^2+2x+1")}, context=room))  # fmt: skip

        def all_sent_while_held() -> bool:  # in a thread: a blocked event loop cannot hide from it
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with lock:
                    pending = sum(not f.done() for f in held)
                if stub.requests == 2 + exams and pending == exams:
                    return True
                time.sleep(0.01)
            release()  # let a stalled run finish, and fail
            return False

        ok = await asyncio.to_thread(all_sent_while_held)
        release()
        out = await run
        await room.aclose()
    assert ok, f"requests stalled behind a pending grade ({stub.requests} of {2 + exams} sent)"
    pairs = out["results"]["tp0"]["pairs"]
    assert all(e["correct"] for p in pairs for e in p["exams"]) and sum(len(p["exams"]) for p in pairs) == exams


def test_bodies_are_json_the_stub_reads() -> None:
    """The wire body is plain JSON (no SDK objects): round-trips through json."""
    chat = OpenAIChat(model="m", base_url="http://127.0.0.1:9/v1")
    body = chat._body([HumanMessage("hi")], ["\n\n"], {"temperature": 0.0, "n": 2, "extra_body": {"top_k": 5}})
    assert json.loads(json.dumps(body)) == {
        "model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.0, "n": 2, "stop": ["\n\n"],
        "top_k": 5,
    }  # fmt: skip


def test_openai_chat_works_without_an_event_loop_too() -> None:
    with StubServer(respond=sample_text) as stub:
        chat = OpenAIChat(model="m", base_url=stub.base_url)
        assert chat.invoke("hi", seed=3).content == sample_text({"seed": 3}, 0)
        assert "".join(str(c.content) for c in chat.stream("hi", seed=4)) == sample_text({"seed": 4}, 0)
