"""``OpenAIChat``: a light LangChain chat model for OpenAI-compatible chat endpoints.

It posts the chat-completions JSON itself over one shared ``aiohttp`` session per event loop and
reads the reply with ``json.loads``: no SDK request building, no response models.  It is a
``BaseChatModel``, so ``ainvoke``/``agenerate``/``astream`` run LangChain's callbacks and LangGraph's
``stream_mode="messages"`` and ``astream_events`` see every request.  ``n`` (a call keyword) asks for
``n`` choices in one request: ``agenerate`` returns them as ``n`` generations.

Errors: :class:`EndpointStatusError` for a non-2xx answer (or an error event mid-stream),
:class:`BadReplyError` (a ``ValueError``) for a body that is not a chat completion, and aiohttp's
own errors for the transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import aiohttp
from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

_ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool", "developer": "developer"}
_SENT = ("temperature", "top_p", "max_tokens", "seed", "n", "stop", "presence_penalty", "frequency_penalty")


class EndpointStatusError(Exception):
    """The endpoint answered with an HTTP error status (or reported an error mid-stream)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"HTTP {status_code}: {message}")
        self.status_code = status_code


class BadReplyError(ValueError):
    """The endpoint's answer is not a chat completion."""


def _wire(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    out = []
    for m in messages:
        role = _ROLES.get(m.type)
        if role is None:
            raise ValueError(f"OpenAIChat cannot send a {m.type!r} message")
        out.append({"role": role, "content": m.content})
    return out


def _usage(usage: Any) -> dict[str, int] | None:
    if not isinstance(usage, dict):
        return None
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    return {"input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion}


def _result(data: Any) -> ChatResult:
    """A chat completion's choices as generations (usage on the first)."""
    try:
        choices = sorted(data["choices"], key=lambda c: c.get("index", 0))
        if not choices:
            raise BadReplyError("a chat completion without choices")
        usage, model = _usage(data.get("usage")), data.get("model")
        generations = []
        for i, choice in enumerate(choices):
            content = choice["message"].get("content") or ""
            if not isinstance(content, str):
                raise BadReplyError("a message content that is not text")
            meta = {"finish_reason": choice.get("finish_reason"), "model_name": model}
            message = AIMessage(content=content, response_metadata=meta,
                                **({"usage_metadata": usage} if usage and i == 0 else {}))
            generations.append(ChatGeneration(message=message, generation_info={"finish_reason": meta["finish_reason"]}))
    except BadReplyError:
        raise
    except (TypeError, KeyError, AttributeError, IndexError) as exc:
        raise BadReplyError(f"not a chat completion ({type(exc).__name__}: {exc})") from None
    return ChatResult(generations=generations, llm_output={"token_usage": data.get("usage"), "model_name": model})


class OpenAIChat(BaseChatModel):
    """A chat model at an OpenAI-compatible ``base_url`` (``…/v1``), lighter than ``ChatOpenAI``.

    ``session``: the ``aiohttp.ClientSession`` to send with (it belongs to one event loop); without
    one the model opens its own per event loop (close them with :meth:`aclose`).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str = Field(description="Served model name at the endpoint.")
    base_url: str = Field(description="The endpoint's base URL, e.g. http://127.0.0.1:8000/v1.")
    api_key: str = Field("EMPTY", repr=False, description="Sent as a bearer token.")
    timeout_s: float = Field(600.0, gt=0, description="Per-request timeout in seconds.")
    session: Any = Field(None, exclude=True, description="A shared aiohttp.ClientSession (one event loop's).")
    _own: Any = PrivateAttr(default_factory=weakref.WeakKeyDictionary)

    @property
    def _llm_type(self) -> str:
        return "lbt-openai-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "base_url": self.base_url}

    @property
    def openai_api_base(self) -> str:
        """The base URL (named as ``ChatOpenAI`` names it)."""
        return self.base_url

    def _should_stream(self, *, async_api: bool, run_manager: Any = None, **kwargs: Any) -> bool:
        if (kwargs.get("n") or 1) > 1:
            return False  # n choices come in one JSON reply (a stream would carry them interleaved)
        return super()._should_stream(async_api=async_api, run_manager=run_manager, **kwargs)

    def _get_invocation_params(self, stop: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        return {"model": self.model, "_type": self._llm_type, "stop": stop, **kwargs}  # cheap: no model_dump

    def _session(self) -> aiohttp.ClientSession:
        if self.session is not None:
            return self.session
        loop = asyncio.get_running_loop()
        session = self._own.get(loop)
        if session is None or session.closed:
            session = self._own[loop] = new_session(self.timeout_s)
        return session

    async def aclose(self) -> None:
        """Close the session this model opened for the running event loop (not a given one)."""
        session = self._own.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()

    def _body(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": _wire(messages)}
        for name in _SENT:
            if kwargs.get(name) is not None:
                body[name] = kwargs[name]
        if stop:
            body["stop"] = stop
        extra = kwargs.get("extra_body")
        if extra:
            body.update(extra)
        return body

    async def _post(self, body: dict[str, Any]) -> aiohttp.ClientResponse:
        response = await self._session().post(
            self.base_url.rstrip("/") + "/chat/completions", data=json.dumps(body, ensure_ascii=False),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.api_key}"},
        )  # fmt: skip
        if response.status >= 400:
            text = await response.text(errors="replace")
            response.release()
            raise EndpointStatusError(response.status, _error_message(text))
        return response

    async def _agenerate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:  # fmt: skip
        response = await self._post(self._body(messages, stop, kwargs))
        try:
            raw = await response.read()
        finally:
            response.release()
        try:
            data = json.loads(raw)
        except ValueError:
            raise BadReplyError(f"not JSON: {raw[:60]!r}") from None
        return _result(data)

    async def _astream(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:  # fmt: skip
        kwargs.pop("stream_usage", None)
        body = {**self._body(messages, stop, kwargs), "stream": True, "stream_options": {"include_usage": True}}
        response = await self._post(body)
        try:
            async for line in response.content:
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    break
                chunk = _chunk(payload)
                if chunk is not None:
                    if run_manager is not None and chunk.text:
                        await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
        finally:
            response.release()

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:  # fmt: skip
        return _run_sync(self._generate_alone(messages, stop, kwargs))

    async def _generate_alone(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> ChatResult:
        """One request on a session of its own (the sync path runs its own event loop)."""
        async with new_session(self.timeout_s) as session:
            return await self.model_copy(update={"session": session})._agenerate(messages, stop, **kwargs)

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        result = self._generate(*args, **kwargs)  # the sync path is for convenience: one chunk
        gen = result.generations[0]
        yield ChatGenerationChunk(message=AIMessageChunk(**gen.message.model_dump(include={"content", "response_metadata", "usage_metadata"})))


def _chunk(payload: bytes) -> ChatGenerationChunk | None:
    try:
        data = json.loads(payload)
    except ValueError:
        raise BadReplyError(f"a stream event that is not JSON: {payload[:60]!r}") from None
    if not isinstance(data, dict):
        raise BadReplyError("a stream event that is not an object")
    if "error" in data:  # the server failed mid-stream (e.g. vLLM's engine stopping): its fault
        error = data["error"] if isinstance(data["error"], dict) else {"message": data["error"]}
        code = error.get("code")
        raise EndpointStatusError(code if isinstance(code, int) and code >= 500 else 500, str(error.get("message")))
    usage = _usage(data.get("usage"))
    choices = data.get("choices") or []
    if not choices:
        return ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage)) if usage else None
    choice = choices[0]
    delta = choice.get("delta") or {}
    meta = {"finish_reason": choice["finish_reason"], "model_name": data.get("model")} if choice.get("finish_reason") else {}
    return ChatGenerationChunk(
        message=AIMessageChunk(content=delta.get("content") or "", response_metadata=meta,
                               **({"usage_metadata": usage} if usage else {})),
        generation_info={"finish_reason": choice["finish_reason"]} if meta else None,
    )  # fmt: skip


def _error_message(text: str) -> str:
    try:
        error = json.loads(text).get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = None
    return str(message or text or "no body")[:300]


def new_session(timeout_s: float) -> aiohttp.ClientSession:
    """An aiohttp session for chat requests on the running loop: pooled keep-alive connections, no
    connection cap (concurrency is bounded by the caller), ``timeout_s`` per request.  Close it with
    ``await session.close()``; one left open is closed quietly when its event loop goes away."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        raise_for_status=False,
    )
    weakref.finalize(asyncio.get_running_loop(), _close_quietly, session)
    return session


def _close_quietly(session: aiohttp.ClientSession) -> None:
    connector = session.connector
    if connector is not None and not connector.closed:
        with contextlib.suppress(Exception):  # its loop is gone: just drop the sockets
            connector._close()
    session._connector = None  # closed: no "Unclosed client session" warning


def _run_sync(coro: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # called from inside a loop: run it beside
        return pool.submit(asyncio.run, coro).result()
