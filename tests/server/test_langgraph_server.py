"""The real LangGraph server (``langgraph dev``, in memory) serving ``langgraph.json``, driven by ``langgraph_sdk``.

It serves the repo's ``langgraph.json`` graphs as they are, plus ``m1_direct`` (``_served_m1``: the M1 graph
itself, whose state stays on the thread between runs).  Its classroom is the stub OpenAI-compatible
server, scripted (``_arithmetic``).  The server runs as a
subprocess in its own process group, on 127.0.0.1, with every proxy variable pointing at a loopback trap
that counts connection attempts, so a try to reach the network fails the test instead of leaving.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langgraph_api", reason="needs langgraph-cli[inmem] (pip install -e '.[server]')")
pytest.importorskip("langgraph_sdk", reason="needs langgraph-sdk (pip install -e '.[server]')")

import psutil
from langgraph_sdk import get_client

from lbt_agents import TPResult
from lbt_agents.stub import StubServer
from tests.server._arithmetic import (
    EPS,
    PAIRS,
    STUDENT_MODEL,
    STUDENTS,
    TEACHER_MODEL,
    item,
    model_calls,
    respond,
    write_run_config,
)

# The SDK client and the tests share the session's event loop (fixtures run in it).
pytestmark = [pytest.mark.timeout(120), pytest.mark.asyncio(loop_scope="session")]

REPO = Path(__file__).resolve().parents[2]
GRAPH, DIRECT = "m1_scoring", "m1_direct"
FIRST = [item("tp1", 2, 3), item("tp2", 10, 5)]
SECOND = [item("tp3", 7, 8), item("tp4", 21, 4)]
_START_TIMEOUT_S = 60.0
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class EgressTrap:
    """A loopback listener posing as every proxy: it records each connection's first line, then closes it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.attempts: list[str] = []
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    self.attempts.append(conn.recv(512).split(b"\r\n", 1)[0].decode("latin-1"))

    def close(self) -> None:
        self._closing.set()
        self._thread.join(5)
        self.sock.close()


@dataclass
class LangGraphServer:
    proc: subprocess.Popen[bytes]
    log: Path
    url: str = ""
    port: int = 0

    def log_tail(self, lines: int = 30) -> str:
        text = _ANSI.sub("", self.log.read_text(errors="replace")) if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL after 15 s."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        deadline = time.monotonic() + 10
        while _group_members(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)


def _group_members(pgid: int) -> list[int]:
    alive = []
    for p in psutil.process_iter(["pid", "status"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                alive.append(p.pid)
    return alive


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_env(trap: EgressTrap) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH_", "LANGCHAIN_", "LANGGRAPH_"))}
    env.pop("LBT_CONFIG", None)  # a run without a context must find no config
    env.update(
        LANGGRAPH_CLI_NO_ANALYTICS="1",  # the CLI's usage beacon
        LANGGRAPH_NO_VERSION_CHECK="true",  # the server's PyPI version check
        LANGSMITH_TRACING="false",
        LANGCHAIN_TRACING_V2="false",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
    )
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env[var] = trap.url
    return env


@pytest.fixture(scope="module")
def trap() -> Iterator[EgressTrap]:
    t = EgressTrap()
    yield t
    t.close()


@pytest.fixture(scope="module")
def stub() -> Iterator[StubServer]:
    with StubServer(respond=respond, models=(TEACHER_MODEL, STUDENT_MODEL)) as s:
        yield s


@pytest.fixture(scope="module")
def run_config(stub: StubServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run_config(tmp_path_factory.mktemp("config") / "run.yaml", stub.base_url)


@pytest.fixture(scope="module")
def server(trap: EgressTrap, stub: StubServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LangGraphServer]:
    # `langgraph dev` resolves langgraph.json's graph paths, and writes its .langgraph_api store, relative to
    # its working directory: run it in a scratch folder that links the package, with the repo's config plus
    # the test graph.
    work = tmp_path_factory.mktemp("langgraph")
    (work / "lbt_agents").symlink_to(REPO / "lbt_agents", target_is_directory=True)
    config = json.loads((REPO / "langgraph.json").read_text())
    config["graphs"][DIRECT] = f"{Path(__file__).with_name('_served_m1.py')}:m1_direct"
    (work / "langgraph.json").write_text(json.dumps(config))
    log = work / "server.log"
    command = [
        sys.executable, "-m", "langgraph_cli", "dev", "--no-browser", "--no-reload",
        "--host", "127.0.0.1", "--port", str(_free_port()), "--config", str(work / "langgraph.json"),
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=work, env=_server_env(trap), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    handle = LangGraphServer(proc, log)
    try:
        _wait_ready(handle)
        yield handle
    finally:
        handle.stop()
    assert proc.returncode is not None, "langgraph dev is still running"
    assert not _group_members(proc.pid), f"processes of langgraph dev are left: {_group_members(proc.pid)}"
    if handle.port:
        assert not _listening(handle.port), f"something still listens on port {handle.port}"
    assert not trap.attempts, f"langgraph dev tried to reach the network: {trap.attempts}"


def _answers_ok(url: str) -> bool:
    no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with no_proxy.open(f"{url}/ok", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _wait_ready(handle: LangGraphServer) -> None:
    """Until the server answers ``/ok`` at the address it printed (it moves to another port if one is taken)."""
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if handle.proc.poll() is not None:
            pytest.fail(f"langgraph dev exited with {handle.proc.returncode}:\n{handle.log_tail()}")
        if not handle.url and (found := re.search(r"API: (http://127\.0\.0\.1:(\d+))", handle.log_tail())):
            handle.url, handle.port = found.group(1), int(found.group(2))
        if handle.url and _answers_ok(handle.url):
            return
        time.sleep(0.2)
    pytest.fail(f"langgraph dev did not answer /ok within {_START_TIMEOUT_S:.0f} s:\n{handle.log_tail()}")


@pytest.fixture
async def client(server: LangGraphServer) -> AsyncIterator[Any]:
    """An SDK client, closed at the end of the test (an open connection holds the server's shutdown back)."""
    c = get_client(url=server.url)
    yield c
    await c.aclose()


def check_results(results: dict[str, TPResult], items: list[Any]) -> None:
    """The scripted classroom's M1 outcome: only pair 0 teaches well, so it alone has LbT 1 and M1-MAX is right."""
    assert set(results) == {it["tp"]["id"] for it in items}
    for it in items:
        res = results[it["tp"]["id"]]
        assert [p["index"] for p in res["pairs"]] == list(range(PAIRS))
        for p in res["pairs"]:
            assert len(p["exams"]) == EPS * STUDENTS, f"{p['id']} took {len(p['exams'])} exams"
            assert {e["ep_id"] for e in p["exams"]} == {ep["id"] for ep in it["eps"]}
        good, *bad = res["pairs"]
        assert good["lbt"] == 1.0 and set(good["per_student"].values()) == {1.0}
        assert all(p["lbt"] == 0.0 for p in bad)
        sel = res["selections"]
        assert sel["max"]["answer"] == it["tp"]["answer"] and sel["max"]["correct"] is True
        assert sel["sc"]["correct"] is False and sel["greedy"]["correct"] is False  # M1 beats both


@pytest.mark.parametrize("graph", [GRAPH, DIRECT])
async def test_two_runs_on_one_thread_compute_fresh_results(
    client: Any, stub: StubServer, run_config: Path, graph: str
) -> None:
    context = {"lbt_config": str(run_config)}
    thread = await client.threads.create()
    outputs = []
    for items in (FIRST, SECOND):
        before = stub.requests
        out = await client.runs.wait(thread["thread_id"], graph, input={"items": items}, context=context)
        assert stub.requests - before == model_calls(len(items))  # the bug: the second run took 0 exams
        check_results(out["results"], items)
        outputs.append(out)
    assert set(outputs[1]) == {"results"}  # the typed output: results only

    state = await client.threads.get_state(thread["thread_id"])
    assert set(state["values"]["results"]) == {it["tp"]["id"] for it in SECOND}
    runs = await client.runs.list(thread["thread_id"])
    assert [r["status"] for r in runs] == ["success", "success"]

    # The second run on a used thread computes what a fresh thread computes.
    fresh = await client.runs.wait(None, graph, input={"items": SECOND}, context=context)
    assert fresh == outputs[1]


@pytest.mark.parametrize("context", [None, {"lbt_config": "missing"}], ids=["no-context", "missing-file"])
async def test_a_run_without_a_run_config_fails_in_one_line(
    client: Any, stub: StubServer, run_config: Path, context: dict[str, str] | None
) -> None:
    if context is not None:
        context = {"lbt_config": str(run_config.parent / "missing.yaml")}
    thread = await client.threads.create()
    before = stub.requests
    out = await client.runs.wait(thread["thread_id"], GRAPH, input={"items": FIRST}, context=context, raise_error=False)
    error = out["__error__"]
    assert error["error"] == "ConfigError"
    if context is None:
        assert "lbt_config" in error["message"] and "LBT_CONFIG" in error["message"]
    else:
        assert error["message"] == f"config file not found: {run_config.parent / 'missing.yaml'}"
    assert "\n" not in error["message"]
    [run] = await client.runs.list(thread["thread_id"])
    assert run["status"] == "error"
    assert stub.requests == before  # it failed before any model call


async def test_schema_shows_the_context_field_and_a_typed_output(client: Any) -> None:
    config = json.loads((REPO / "langgraph.json").read_text())
    assert "env" not in config  # it would override the shell's LBT_CONFIG
    assert GRAPH in config["graphs"]

    [assistant] = await client.assistants.search(graph_id=GRAPH)
    schemas = await client.assistants.get_schemas(assistant["assistant_id"])
    context = schemas["context_schema"]["properties"]
    assert set(context) == {"lbt_config"}
    assert {"type": "string"} in context["lbt_config"]["anyOf"]

    output = schemas["output_schema"]
    assert set(output["properties"]) == {"results"}
    assert output["properties"]["results"]["additionalProperties"] == {"$ref": "#/$defs/TPResult"}
    fields = TPResult.__required_keys__ | TPResult.__optional_keys__
    assert set(output["$defs"]["TPResult"]["properties"]) == fields
    assert set(schemas["input_schema"]["properties"]) == {"items"}
