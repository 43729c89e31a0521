"""The stub speaks the OpenAI protocol as the real ``openai`` client reads it."""

from __future__ import annotations

import httpx
import openai
import pytest

from lbt_agents.stub import StubServer

SYSTEM = {"role": "system", "content": "You are a careful teacher."}


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


@pytest.fixture(scope="module")
def stub():
    with StubServer() as server:
        yield server


async def test_echo_with_usage_counted_in_words(stub: StubServer) -> None:
    client = openai.AsyncOpenAI(base_url=stub.base_url, api_key="x", max_retries=0)
    before = stub.requests
    reply = await client.chat.completions.create(
        model="any-name", messages=[SYSTEM, _user("what is  2 +\n2?")], seed=3, temperature=0.7,
        extra_body={"top_k": 20},
    )  # fmt: skip
    await client.close()
    assert reply.choices[0].message.content == "what is  2 +\n2?"
    assert reply.choices[0].finish_reason == "stop" and reply.model == "any-name"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (10, 5, 15)
    assert stub.requests == before + 1


async def test_n_choices_each_with_its_index_and_max_tokens_cuts_with_length(stub: StubServer) -> None:
    client = openai.AsyncOpenAI(base_url=stub.base_url, api_key="x", max_retries=0)
    reply = await client.chat.completions.create(
        model="m", messages=[_user("one two three four five")], n=3, max_tokens=2
    )
    short = await client.chat.completions.create(model="m", messages=[_user("one two")], max_tokens=2)
    await client.close()
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert {c.message.content for c in reply.choices} == {"one two"}
    assert {c.finish_reason for c in reply.choices} == {"length"}
    assert reply.usage.completion_tokens == 6 and reply.usage.prompt_tokens == 5
    assert short.choices[0].finish_reason == "stop"  # exactly max_tokens words is not a cut


async def test_stream_with_usage_chunk_and_done(stub: StubServer) -> None:
    client = openai.AsyncOpenAI(base_url=stub.base_url, api_key="x", max_retries=0)
    stream = await client.chat.completions.create(
        model="m", messages=[_user("alpha beta gamma delta")], stream=True, n=2, max_tokens=3,
        stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = [chunk async for chunk in stream]
    await client.close()
    texts, reasons = {0: "", 1: ""}, {}
    for chunk in chunks[:-1]:
        assert chunk.usage is None
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                reasons[choice.index] = choice.finish_reason
    assert texts == {0: "alpha beta gamma", 1: "alpha beta gamma"}
    assert reasons == {0: "length", 1: "length"}
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 6
    assert chunks[-1].usage.prompt_tokens == 4


async def test_stream_without_usage_has_no_usage_chunk(stub: StubServer) -> None:
    async with httpx.AsyncClient(base_url=stub.base_url) as http:
        body = {"model": "m", "messages": [_user("a b")], "stream": True}
        text = (await http.post("/chat/completions", json=body)).text
    events = [line.removeprefix("data: ") for line in text.split("\n\n") if line]
    assert events[-1] == "[DONE]" and '"usage"' not in text
    assert len(events) == 1 + 2 + 1 + 1  # role, two words, finish, [DONE]


def test_stop_sequence_cuts_at_the_earliest_match(stub: StubServer) -> None:
    client = openai.OpenAI(base_url=stub.base_url, api_key="x", max_retries=0)
    reply = client.chat.completions.create(model="m", messages=[_user("a b STOP c END d")], stop=["END", "STOP"])
    client.close()
    assert reply.choices[0].message.content == "a b " and reply.choices[0].finish_reason == "stop"


def test_content_parts_count_as_words(stub: StubServer) -> None:
    client = openai.OpenAI(base_url=stub.base_url, api_key="x", max_retries=0)
    parts = [{"type": "text", "text": "red green"}, {"type": "text", "text": "blue"}]
    reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": parts}])
    client.close()
    assert reply.usage.prompt_tokens == 3 and reply.choices[0].message.content == "red green\nblue"


def test_models_default_and_configured() -> None:
    with StubServer(models=["teacher", "student"]) as stub:
        client = openai.OpenAI(base_url=stub.base_url, api_key="x", max_retries=0)
        assert [m.id for m in client.models.list()] == ["teacher", "student"]
        assert client.chat.completions.create(model="student", messages=[_user("hi")]).model == "student"
        with pytest.raises(openai.NotFoundError, match="`gpt-4o` does not exist"):
            client.chat.completions.create(model="gpt-4o", messages=[_user("hi")])
        client.close()
        assert stub.requests == 2


def test_invalid_requests_are_400_and_counted(stub: StubServer) -> None:
    before = stub.requests
    client = openai.OpenAI(base_url=stub.base_url, api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError, match="'n' must be a positive integer"):
        client.chat.completions.create(model="m", messages=[_user("hi")], n=0)
    with pytest.raises(openai.BadRequestError, match="'messages' is required"):
        client.chat.completions.create(model="m", messages=[])
    client.close()
    response = httpx.post(stub.base_url + "/chat/completions", content=b"{not json", timeout=5)
    assert response.status_code == 400 and "not JSON" in response.json()["error"]["message"]
    assert httpx.get(stub.base_url + "/nothing", timeout=5).status_code == 404
    assert stub.requests == before + 3


def test_text_completions_with_a_batch_of_prompts(stub: StubServer) -> None:
    client = openai.OpenAI(base_url=stub.base_url, api_key="x", max_retries=0)
    reply = client.completions.create(model="m", prompt=["x y z", "w"], n=2, max_tokens=2)
    client.close()
    assert [(c.index, c.text, c.finish_reason) for c in reply.choices] == [
        (0, "x y", "length"), (1, "x y", "length"), (2, "w", "stop"), (3, "w", "stop"),
    ]  # fmt: skip
    assert reply.usage.prompt_tokens == 4 and reply.usage.completion_tokens == 6


def test_streamed_text_completion(stub: StubServer) -> None:
    client = openai.OpenAI(base_url=stub.base_url, api_key="x", max_retries=0)
    chunks = list(client.completions.create(model="50%-off", prompt="x  y\tz", stream=True, max_tokens=2))
    client.close()
    assert "".join(c.choices[0].text for c in chunks) == "x  y"
    assert chunks[-1].choices[0].finish_reason == "length" and {c.model for c in chunks} == {"50%-off"}
