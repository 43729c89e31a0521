"""While requests are retried, a `retrying:` line on stderr (at most one per agent every 10 s)."""

from __future__ import annotations

import socket

import pytest
import tenacity

import lbt_agents.llm as llm
from lbt_agents.config import AgentConfig
from lbt_agents.errors import EndpointError
from lbt_agents.llm import ChatAgent
from lbt_agents.testing import ScriptedChatModel


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llm, "wait_exponential_jitter", lambda **_: tenacity.wait_none())


def retry_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("retrying:")]


async def test_a_server_that_is_down_shows_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Today: a hung or down server retries in silence (with the default 600 s × 5 tries, ~50 minutes)."""
    url = f"http://127.0.0.1:{closed_port()}/v1"
    agent = ChatAgent(AgentConfig(name="teacher", model="m", base_url=url, max_retries=4))
    with pytest.raises(EndpointError, match="kept failing after 5 tries"):
        await agent.sample([{"role": "user", "content": "hi"}], n=1)
    await agent.aclose()
    lines = retry_lines(capsys.readouterr().err)
    assert lines == [f"retrying: agent 'teacher' endpoint {url} (ClientConnectorError), attempt 2/5"]  # 4 retries, 1 line


async def test_every_retry_is_shown_when_the_window_is_zero(capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ChatAgent, "RETRY_NOTICE_EVERY_S", 0.0)
    flaky = ScriptedChatModel(respond=lambda m: "fine", fail_times=2)
    agent = ChatAgent(AgentConfig(name="s0", max_retries=3), models=[flaky])
    replies = await agent.sample([{"role": "user", "content": "hi"}], n=1)
    assert replies[0].text == "fine"
    assert retry_lines(capsys.readouterr().err) == [
        "retrying: agent 's0' endpoint ScriptedChatModel (ConnectionError), attempt 2/4",
        "retrying: agent 's0' endpoint ScriptedChatModel (ConnectionError), attempt 3/4",
    ]


async def test_one_line_per_agent(capsys: pytest.CaptureFixture[str]) -> None:
    agents = [ChatAgent(AgentConfig(name=n, max_retries=2), models=[ScriptedChatModel(respond=lambda m: "ok",
                                                                                      fail_times=2)])
              for n in ("a", "b")]
    for agent in agents:
        await agent.sample([{"role": "user", "content": "hi"}], n=1)
    lines = retry_lines(capsys.readouterr().err)
    assert [line.split("'")[1] for line in lines] == ["a", "b"]


async def test_no_line_without_a_retry(capsys: pytest.CaptureFixture[str]) -> None:
    agent = ChatAgent(AgentConfig(name="s0"), models=[ScriptedChatModel(respond=lambda m: "ok")])
    await agent.sample([{"role": "user", "content": "hi"}], n=2)
    assert retry_lines(capsys.readouterr().err) == []
