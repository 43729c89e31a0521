"""``langchain_openai.ChatOpenAI`` against the stub: invoke, astream with usage, ``n``, and callbacks
seeing exactly the requests the server received."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

from lbt_agents.stub import StubServer


class _Calls(BaseCallbackHandler):
    def __init__(self) -> None:
        self.starts = 0

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.starts += 1


def _chat(stub: StubServer, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(base_url=stub.base_url, api_key="x", model="student", max_retries=0, **kwargs)


def test_invoke_reports_usage_and_finish_reason() -> None:
    with StubServer(respond=lambda body, i: "the answer is 4") as stub:
        reply = _chat(stub, max_tokens=3).invoke([SystemMessage("be brief"), HumanMessage("2 + 2 = ?")])
    assert reply.content == "the answer is"
    assert reply.response_metadata["finish_reason"] == "length"
    assert reply.usage_metadata["input_tokens"] == 7 and reply.usage_metadata["output_tokens"] == 3


async def test_astream_with_stream_usage() -> None:
    with StubServer() as stub:
        chunks = [c async for c in _chat(stub, stream_usage=True).astream("one two three")]
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert total.content == "one two three"
    assert total.usage_metadata["output_tokens"] == 3 and total.usage_metadata["input_tokens"] == 3
    assert total.response_metadata["finish_reason"] == "stop"


async def test_n_samples_in_one_request_and_callbacks_match_the_server_count() -> None:
    calls = _Calls()
    with StubServer(respond=lambda body, i: f"sample {i}") as stub:
        chat = _chat(stub, n=4, callbacks=[calls])
        result = await chat.agenerate([[HumanMessage("teach me")], [HumanMessage("again")]])
        await chat.ainvoke("once more")
        received = stub.requests
    assert [[g.text for g in gens] for gens in result.generations] == [[f"sample {i}" for i in range(4)]] * 2
    assert result.llm_output["token_usage"]["completion_tokens"] == 2 * 8
    assert calls.starts == received == 3
