"""The agents' model client: replicas, retries, clear errors, token accounting."""

from __future__ import annotations

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
