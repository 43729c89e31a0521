"""An offline chat model for unit tests of teaching graphs (no server needed).

``ScriptedChatModel(respond=fn)`` answers each request with ``fn(messages)``
(messages as ``[{"role", "content"}, ...]``), or ``fn(messages, params)`` when
``fn`` takes two arguments (``params``: temperature, seed, max_tokens, ...);
it reports token usage and a finish reason, and records every request it saw.
"""

from __future__ import annotations

import inspect
import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any, Callable

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

Responder = Callable[..., str]

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


def _as_dicts(messages: list[BaseMessage]) -> list[dict[str, str]]:
    return [{"role": _ROLES.get(m.type, m.type), "content": str(m.content)} for m in messages]


class ScriptedChatModel(BaseChatModel):
    """A deterministic (or scripted) offline chat model."""

    respond: Responder
    max_tokens: int | None = None
    """Replies longer than this many words are cut and marked ``length``."""
    fail_times: int = 0
    """Raise a connection error on the first ``fail_times`` requests (tests retries)."""
    calls: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "lbt-scripted"

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        as_dicts = _as_dicts(messages)
        self.calls.append({"messages": as_dicts, "kwargs": kwargs})
        if self.fail_times > 0:
            self.fail_times -= 1
            raise ConnectionError("scripted endpoint failure")
        takes_params = len(inspect.signature(self.respond).parameters) >= 2
        text = self.respond(as_dicts, dict(kwargs)) if takes_params else self.respond(as_dicts)
        words = text.split(" ")
        limit = kwargs.get("max_tokens") or self.max_tokens
        finish = "stop"
        if limit is not None and len(words) > limit:
            text, finish = " ".join(words[:limit]), "length"
        prompt_tokens = sum(len(m["content"].split()) for m in as_dicts)
        message = AIMessage(
            content=text,
            usage_metadata={
                "input_tokens": prompt_tokens,
                "output_tokens": len(text.split()),
                "total_tokens": prompt_tokens + len(text.split()),
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message, generation_info={"finish_reason": finish})])

    def _stream(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        """The same reply, word by word; usage and finish reason on the last chunk (as OpenAI streams)."""
        kwargs.pop("stream_usage", None)
        yield from _chunks(self._generate(messages, stop, run_manager, **kwargs))

    async def _astream(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        kwargs.pop("stream_usage", None)
        result = await asyncio.to_thread(self._generate, messages, stop, None, **kwargs)  # one hop, like ainvoke
        for chunk in _chunks(result):
            yield chunk


def _chunks(result: ChatResult) -> Iterator[ChatGenerationChunk]:
    [gen] = result.generations
    for i, word in enumerate(str(gen.message.content).split(" ")):
        yield ChatGenerationChunk(message=AIMessageChunk(content=word if i == 0 else " " + word))
    yield ChatGenerationChunk(
        message=AIMessageChunk(
            content="",
            usage_metadata=getattr(gen.message, "usage_metadata", None),
            response_metadata={"finish_reason": (gen.generation_info or {}).get("finish_reason")},
        )
    )
