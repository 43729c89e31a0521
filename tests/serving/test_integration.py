"""The embedded classroom for real: vLLM serving smollm2-135m (shared session fixture)."""

from __future__ import annotations

import httpx
import psutil
import pytest

from lbt_agents.serving import Classroom

pytestmark = pytest.mark.integration


def _vllm_pids(under: set[int]) -> set[int]:
    """Live processes whose command line mentions vllm.entrypoints, among ``under``."""
    found = set()
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.info["pid"] in under and proc.info["status"] != psutil.STATUS_ZOMBIE:
            if "vllm.entrypoints" in " ".join(proc.info["cmdline"] or []):
                found.add(proc.info["pid"])
    return found


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_chat_completion_through_langchain(embedded_classroom) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        base_url=embedded_classroom.base_url("smollm2-135m"), model="smollm2-135m", api_key="EMPTY",
        temperature=0, max_tokens=24, timeout=300,
    )  # fmt: skip
    reply = llm.invoke("What is the capital of France? Answer in one word.")
    assert isinstance(reply.content, str) and reply.content.strip()
    assert reply.usage_metadata and reply.usage_metadata["output_tokens"] > 0


def test_restart_keeps_the_port_and_serves_again(embedded_classroom) -> None:
    if not isinstance(embedded_classroom, Classroom):
        pytest.skip("the test server is external (LBT_TEST_BASE_URL); it cannot be restarted here")
    server = embedded_classroom.server("smollm2-135m")
    before = server.endpoint
    assert before is not None
    root = psutil.Process(before.pid)
    old_tree = {root.pid, *(c.pid for c in root.children(recursive=True))}
    assert _vllm_pids(old_tree) == {before.pid}
    after = server.restart()
    assert after.port == before.port and after.pid != before.pid
    # stop() left nothing of the old server behind: not the API server, not its engine processes.
    assert not any(_alive(p) for p in old_tree)
    assert embedded_classroom.base_url("smollm2-135m") == before.base_url
    resp = httpx.post(
        after.base_url + "/chat/completions",
        json={"model": "smollm2-135m", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8},
        timeout=300,
    )
    assert resp.status_code == 200 and resp.json()["usage"]["completion_tokens"] > 0
