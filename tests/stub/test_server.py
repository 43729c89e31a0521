"""The ``StubServer`` context manager: scripted answers, faults, delay, counting, process mode, shutdown."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx
import openai
import pytest

from lbt_agents.errors import ConfigError
from lbt_agents.stub import StubServer

from ._scripts import numbered

MESSAGES = [{"role": "user", "content": "hello"}]


def _client(stub: StubServer, **kwargs: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=stub.base_url, api_key="x", max_retries=0, **kwargs)


def test_scripted_responder_sees_the_body_and_the_choice_index() -> None:
    seen: list[tuple[float, int]] = []

    def respond(body: dict, i: int) -> str:
        seen.append((body["temperature"], i))
        return f"{body['messages'][-1]['content']} #{i}"

    with StubServer(respond=respond) as stub:
        reply = _client(stub).chat.completions.create(model="m", messages=MESSAGES, n=2, temperature=0.5)
    assert [c.message.content for c in reply.choices] == ["hello #0", "hello #1"]
    assert seen == [(0.5, 0), (0.5, 1)]


async def test_async_responder_and_a_fixed_text() -> None:
    async def respond(body: dict, i: int) -> str:
        await asyncio.sleep(0)
        return "awaited"

    with StubServer(respond=respond) as stub, StubServer(text="fixed") as fixed:
        client = openai.AsyncOpenAI(base_url=stub.base_url, api_key="x", max_retries=0)
        other = openai.AsyncOpenAI(base_url=fixed.base_url, api_key="x", max_retries=0)
        a, b = await asyncio.gather(
            client.chat.completions.create(model="m", messages=MESSAGES),
            other.chat.completions.create(model="m", messages=MESSAGES),
        )
        await client.close()
        await other.close()
    assert (a.choices[0].message.content, b.choices[0].message.content) == ("awaited", "fixed")


def test_a_broken_responder_answers_500_and_the_server_stays_up() -> None:
    def respond(body: dict, i: int) -> str:
        if body["messages"][-1]["content"] == "boom":
            raise ValueError("scripted failure")
        return "fine"

    with StubServer(respond=respond) as stub:
        client = _client(stub)
        with pytest.raises(openai.InternalServerError, match="respond raised ValueError: scripted failure"):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "boom"}])
        assert client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content == "fine"


def test_fault_injection_fails_the_first_requests_and_retries_are_counted() -> None:
    with StubServer(fail_first=2) as stub:
        with pytest.raises(openai.InternalServerError, match="injected fault 1 of 2"):
            _client(stub).chat.completions.create(model="m", messages=MESSAGES)
        retrying = openai.OpenAI(base_url=stub.base_url, api_key="x", max_retries=2)
        reply = retrying.with_options(timeout=5).chat.completions.create(model="m", messages=MESSAGES)
        assert reply.choices[0].message.content == "hello"
        assert (stub.requests, stub.failed) == (3, 2)


def test_delay_and_recorded_bodies_and_reset() -> None:
    with StubServer(delay_ms=150, record_bodies=True) as stub:
        start = time.perf_counter()
        _client(stub).chat.completions.create(model="m", messages=MESSAGES, seed=7)
        assert time.perf_counter() - start >= 0.15
        [body] = stub.bodies
        assert body["seed"] == 7 and body["messages"] == MESSAGES
        stub.reset()
        assert (stub.requests, stub.bodies) == (0, [])
    with StubServer() as quiet:
        _client(quiet).chat.completions.create(model="m", messages=MESSAGES)
        assert quiet.requests == 1 and quiet.bodies == []  # bodies are off by default


def test_peak_in_flight_counts_the_requests_it_answered_at_once():
    async def three_at_once(url: str) -> None:
        async with httpx.AsyncClient() as client:
            body = {"model": "m", "messages": MESSAGES}
            await asyncio.gather(*(client.post(f"{url}/chat/completions", json=body, timeout=10) for _ in range(3)))

    with StubServer(delay_ms=200) as stub:
        _client(stub).chat.completions.create(model="m", messages=MESSAGES)
        assert stub.peak_in_flight == 1
        asyncio.run(three_at_once(stub.base_url))
        assert (stub.requests, stub.peak_in_flight) == (4, 3)
        stub.reset()
        assert stub.peak_in_flight == 0


def test_record_to_appends_each_body_as_a_json_line(tmp_path):
    path = tmp_path / "bodies.jsonl"
    pretty = json.dumps({"model": "m", "messages": [{"role": "user", "content": "line one\nline two"}]}, indent=2)
    with StubServer(record_to=path, process=True) as stub:
        _client(stub).chat.completions.create(model="m", messages=MESSAGES, seed=3)
        httpx.post(f"{stub.base_url}/chat/completions", content=pretty, timeout=10)  # newlines between tokens
        assert stub.requests == 2  # asking for the stats flushes the file
        lines = path.read_text().splitlines()
        assert [json.loads(line)["messages"] for line in lines] == [MESSAGES, json.loads(pretty)["messages"]]
        assert json.loads(lines[0])["seed"] == 3 and stub.bodies == []  # nothing kept in memory


def test_process_mode_counts_over_http_and_stops() -> None:
    with StubServer(respond=numbered, process=True, record_bodies=True) as stub:
        reply = _client(stub).chat.completions.create(model="m", messages=MESSAGES, n=2)
        assert [c.message.content for c in reply.choices] == ["choice 0 of 2", "choice 1 of 2"]
        assert stub.requests == 1 and stub.bodies[0]["n"] == 2
        stub.reset()
        assert stub.requests == 0
        _client(stub).chat.completions.create(model="m", messages=MESSAGES)
        port = stub.port
    assert stub.requests == 1 and len(stub.bodies) == 1  # still readable once stopped
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)


def test_process_mode_needs_a_picklable_responder() -> None:
    with pytest.raises(ConfigError, match="needs a respond that pickles"):
        StubServer(respond=lambda body, i: "x", process=True).start()


def test_bad_setup_is_one_line() -> None:
    with pytest.raises(ConfigError, match="refusing to listen on 0.0.0.0"):
        StubServer(host="0.0.0.0")
    with pytest.raises(ConfigError, match="one of respond=, text= or script="):
        StubServer(respond=numbered, text="x")
    with StubServer() as stub, pytest.raises(ConfigError, match=f"port {stub.port} on 127.0.0.1 is in use"):
        StubServer(port=stub.port).start()


def test_script_file(tmp_path) -> None:
    script = tmp_path / "answers.py"
    script.write_text("def respond(body, choice_index):\n    return body['model'].upper()\n")
    with StubServer(script=script) as stub:
        assert _client(stub).chat.completions.create(model="abc", messages=MESSAGES).choices[0].message.content == "ABC"
    (tmp_path / "none.py").write_text("x = 1\n")
    with pytest.raises(ConfigError, match="defines no function respond"):
        StubServer(script=tmp_path / "none.py").start()


def test_raw_http_keep_alive_chunked_body_and_100_continue() -> None:
    body = b'{"messages":[{"role":"user","content":"raw bytes"}]}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    with StubServer() as stub, socket.create_connection(("127.0.0.1", stub.port), timeout=5) as sock:
        reader = sock.makefile("rb")
        for framing in (b"content-length: %d\r\n\r\n%s" % (len(body), body), b"transfer-encoding: chunked\r\n\r\n" + chunked):
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n" + framing)
            assert reader.readline() == b"HTTP/1.1 200 OK\r\n"
            headers = dict(line.decode().strip().split(": ", 1) for line in iter(reader.readline, b"\r\n"))
            assert b'"content":"raw bytes"' in reader.read(int(headers["content-length"]))
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nexpect: 100-continue\r\ncontent-length: %d\r\n\r\n" % len(body))
        assert reader.readline() == b"HTTP/1.1 100 Continue\r\n" and reader.readline() == b"\r\n"
        sock.sendall(body)
        assert reader.readline() == b"HTTP/1.1 200 OK\r\n"
        assert stub.requests == 3  # all on one connection


def test_stopping_ends_idle_keep_alive_connections() -> None:
    with StubServer() as stub:
        http = httpx.Client(base_url=stub.base_url, timeout=5)
        assert http.get("/models").status_code == 200  # leaves a keep-alive connection open
        start = time.perf_counter()
    assert time.perf_counter() - start < 2
    with pytest.raises(httpx.TransportError):
        http.get("/models")
    http.close()
