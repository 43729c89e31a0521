"""The agents' model client: replicas, retries, clear errors, token accounting."""

from __future__ import annotations

import asyncio
import threading

import pytest

from lbt_agents.config import AgentConfig, Sampling
from lbt_agents.errors import EndpointError
from lbt_agents.llm import ChatAgent
from lbt_agents.testing import ScriptedChatModel

MSGS = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]


async def test_requests_spread_over_replicas() -> None:
    a, b = ScriptedChatModel(respond=lambda m: "a"), ScriptedChatModel(respond=lambda m: "b")
    agent = ChatAgent(AgentConfig(name="t", sampling=Sampling(n=4)), models=[a, b])
    replies = await agent.sample(MSGS)
    assert sorted(r.text for r in replies) == ["a", "a", "b", "b"]
    assert len(a.calls) == len(b.calls) == 2


async def test_transient_errors_are_retried_then_reported_in_one_line() -> None:
    flaky = ScriptedChatModel(respond=lambda m: "ok", fail_times=1)
    agent = ChatAgent(AgentConfig(name="t", max_retries=2), models=[flaky])
    [reply] = await agent.sample(MSGS)
    assert reply.text == "ok" and len(flaky.calls) == 2

    down = ScriptedChatModel(respond=lambda m: "never", fail_times=10)
    agent = ChatAgent(AgentConfig(name="t", max_retries=1), models=[down])
    with pytest.raises(EndpointError) as err:
        await agent.sample(MSGS)
    assert len(down.calls) == 2
    assert "\n" not in str(err.value) and "kept failing after 2 tries" in str(err.value)


async def test_usage_is_accounted_per_agent_and_truncation_is_marked() -> None:
    model = ScriptedChatModel(respond=lambda m: "one two three four five")
    agent = ChatAgent(AgentConfig(name="s", sampling=Sampling(max_tokens=3, temperature=0.0)), models=[model])
    [reply] = await agent.sample(MSGS)
    assert reply.truncated and reply.text == "one two three"
    usage = agent.meter.of("s")
    assert (usage.requests, usage.prompt_tokens, usage.completion_tokens) == (1, 4, 3)
    assert model.calls[0]["kwargs"]["max_tokens"] == 3 and model.calls[0]["kwargs"]["temperature"] == 0.0


async def test_top_k_goes_to_the_server_as_an_extra() -> None:
    model = ScriptedChatModel(respond=lambda m: "x")
    agent = ChatAgent(AgentConfig(name="s", sampling=Sampling(top_k=20, seed=7)), models=[model])
    await agent.sample(MSGS)
    assert model.calls[0]["kwargs"]["extra_body"] == {"top_k": 20}
    assert model.calls[0]["kwargs"]["seed"] == 7


async def test_calls_sharing_a_prefix_start_after_the_first_one_streams() -> None:
    started: list[str] = []
    release = threading.Event()

    def respond(messages: list[dict[str, str]]) -> str:
        started.append(messages[-1]["content"])
        if messages[-1]["content"] == "ep0":
            release.wait(5)  # the first call has not produced a token yet
        return "ten words of answer " * 2

    agent = ChatAgent(AgentConfig(name="s", sampling=Sampling(max_tokens=4)), models=[ScriptedChatModel(respond=respond)])
    shared = [{"role": "system", "content": "rules"}, {"role": "user", "content": "tp"}]
    calls = [
        asyncio.create_task(agent.sample([*shared, {"role": "user", "content": f"ep{i}"}], key=str(i), shared_prefix=2))
        for i in range(3)
    ]
    other = asyncio.create_task(agent.sample([{"role": "user", "content": "elsewhere"}], shared_prefix=0))
    await asyncio.sleep(0.3)
    assert sorted(started) == ["elsewhere", "ep0"]  # ep1, ep2 wait for ep0's first token
    release.set()
    replies = [r for [r] in await asyncio.gather(*calls)]
    await other
    assert sorted(started) == ["elsewhere", "ep0", "ep1", "ep2"]
    streamed = replies[0]  # the first call streamed: same reply, usage and finish reason as the others
    assert streamed.text == replies[1].text == "ten words of answer"
    assert (streamed.finish_reason, streamed.completion_tokens) == ("length", 4)
    assert streamed.prompt_tokens == replies[1].prompt_tokens > 0


async def test_a_failed_first_call_does_not_hold_back_the_others() -> None:
    model = ScriptedChatModel(respond=lambda m: "fine", fail_times=1)
    agent = ChatAgent(AgentConfig(name="s", max_retries=0), models=[model])
    shared = [{"role": "user", "content": "tp"}]
    first, second = await asyncio.gather(
        agent.sample([*shared, {"role": "user", "content": "a"}], shared_prefix=1),
        agent.sample([*shared, {"role": "user", "content": "b"}], shared_prefix=1),
        return_exceptions=True,
    )
    assert isinstance(first, EndpointError)
    assert [r.text for r in second] == ["fine"]
