"""Model access for agents: one :class:`ChatAgent` per configured agent.

A ``ChatAgent`` wraps LangChain chat models (``ChatOpenAI`` against any
OpenAI-compatible endpoint, or any ``BaseChatModel`` such as the offline
:class:`lbt_agents.testing.ScriptedChatModel`) and adds what long teaching runs
need: bounded concurrency, retries with backoff, a call cache that keeps samples
distinct, replica spreading, and token accounting.

Samples are requested one per call (sample ``i`` uses seed ``seed + i``): with
vLLM's prefix cache the shared prompt is computed once anyway, and each sample
becomes individually cacheable and resumable.

Calls marked ``coalesce=True`` that are identical (same sample, same model at the
same endpoints: e.g. two lanes' teachers scoring one exemplar set) and in flight
at once are sent once.

Every request goes through the chat model's runnable interface (``ainvoke`` /
``astream``), so callbacks, tracing and LangGraph's ``stream_mode="messages"``
see every call.  Loop-bound state (the concurrency limit, prefix turns, calls in
flight) is made per event loop at run time (:class:`CallLimits`).

Calls that declare a shared prefix (``sample(..., shared_prefix=k)``: the first
``k`` messages are the same for many calls, e.g. one TR-TA pair's exams) take
turns: the first call streams, and the others start once its first token is out,
i.e. once the server has computed, and cached, the shared part.  Sent together,
requests that arrive in the same scheduler step each compute the prefix again.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
import weakref
from dataclasses import asdict, dataclass, field
from collections.abc import Callable
from typing import Any, Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from lbt_agents.budget import Budget
from lbt_agents.cache import CallCache, cache_key
from lbt_agents.config import EMBEDDED, AgentConfig, Sampling
from lbt_agents.errors import ConfigError, EndpointError, LbtError
from lbt_agents.paper._prompts import CONTINUE_FINAL_MESSAGE

Message = dict[str, str]
"""A chat message: ``{"role": "system"|"user"|"assistant", "content": ...}``."""


@dataclass(frozen=True)
class Reply:
    """One sampled reply."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Usage:
    """Token and request accounting of one agent."""

    requests: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    wall_s: float = 0.0

    def add(self, reply: Reply, wall_s: float) -> None:
        if reply.cached:
            self.cache_hits += 1
        else:
            self.requests += 1
            self.wall_s += wall_s
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens


@dataclass
class UsageMeter:
    """Per-agent :class:`Usage`, shared by all agents of a run."""

    agents: dict[str, Usage] = field(default_factory=dict)

    def of(self, name: str) -> Usage:
        return self.agents.setdefault(name, Usage())

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {name: asdict(u) for name, u in sorted(self.agents.items())}


@dataclass
class _LoopState:
    limiter: asyncio.Semaphore
    prefix_turns: dict[str, asyncio.Future[None]] = field(default_factory=dict)
    inflight: dict[str, asyncio.Future[Reply]] = field(default_factory=dict)


class CallLimits:
    """At most ``max_concurrency`` requests in flight (and a run's budget), shared by the agents that hold it.

    Its semaphore, prefix turns and in-flight calls are made per event loop, when
    first used, so one classroom serves any number of runs and loops.
    """

    def __init__(self, max_concurrency: int = 64, budget: Budget | None = None) -> None:
        if max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.max_concurrency = max_concurrency
        self.budget = budget
        """The run's :class:`~lbt_agents.budget.Budget`: every request the agents send is counted (or refused) there."""
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()

    def here(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = self._loops[loop] = _LoopState(asyncio.Semaphore(self.max_concurrency))
        return state


def to_langchain(messages: Sequence[Message]) -> list[BaseMessage]:
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    try:
        return [kinds[m["role"]](content=m["content"]) for m in messages]
    except KeyError as exc:
        raise ConfigError(f"unknown message role {exc.args[0]!r}") from None


def _transient(exc: BaseException) -> bool:
    import httpx
    import openai

    if isinstance(exc, (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    if isinstance(exc, openai.APIError):
        return True  # the server reported an error mid-stream (e.g. vLLM's engine stopping): its fault, not ours
    return isinstance(exc, (httpx.TransportError, asyncio.TimeoutError, ConnectionError))


def _bad_body(exc: BaseException) -> bool:
    """A reply the client could not read as a chat completion (garbage, empty or the wrong shape)."""
    import openai

    if isinstance(exc, LbtError):
        return False
    if isinstance(exc, (ValueError, openai.APIResponseValidationError)):
        return True
    if isinstance(exc, (TypeError, KeyError, AttributeError, IndexError)):  # a reply of the wrong shape...
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = tb.tb_frame.f_code.co_filename if tb is not None else ""
        return any(f"{sep}{pkg}{sep}" in where for pkg in ("langchain_openai", "openai") for sep in "/\\")  # ...read there
    return False


def _root_cause(exc: BaseException | None) -> BaseException | None:
    """The transport error under a client's wrapper (openai's APIConnectionError wraps httpx's ConnectError)."""
    import httpx

    seen, visited = exc, set()
    while seen is not None and id(seen) not in visited:
        if isinstance(seen, httpx.HTTPError):
            return seen
        visited.add(id(seen))
        seen = seen.__cause__ or seen.__context__
    return exc


def refused_prefill_line(agent: str, url: str, why: str) -> str:
    return (
        f"agent {agent!r}: endpoint {url} refuses to continue a final assistant message ({why}); the paper "
        "prompts prefill the assistant turn and need an endpoint that accepts continue_final_message "
        "(vLLM's OpenAI server does), or use classroom.prompts=default"
    )


_PREFILL_WORDS = ("continue_final_message", "add_generation_prompt", "final assistant", "prefill", "unrecognized",
                  "extra inputs", "extra_forbidden", "unexpected keyword")


def _refused_prefill(exc: BaseException) -> bool:
    """A 4xx answer to a prefilled request that names the continuation (or unknown fields) as the reason;
    other 4xx answers (a prompt too long, ...) keep their own error."""
    import openai

    if not isinstance(exc, openai.APIStatusError) or not 400 <= exc.status_code < 500:
        return False
    text = str(exc).lower()
    return exc.status_code not in (408, 409, 429) and any(word in text for word in _PREFILL_WORDS)


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0][:200] if text else ""


def openai_chat_models(cfg: AgentConfig, http_async_client: Any = None) -> list[BaseChatModel]:
    """One ``ChatOpenAI`` per base URL of ``cfg`` (replicas); ``http_async_client``: the HTTP
    client they share (connections belong to one event loop)."""
    from langchain_openai import ChatOpenAI

    if EMBEDDED in cfg.base_urls:
        raise ConfigError(
            f"agent {cfg.name!r} still points at the embedded classroom; start it first "
            "(lbt runs do this for you) or set base_url to an OpenAI-compatible URL"
        )
    return [
        ChatOpenAI(
            model=cfg.model,
            base_url=url,
            api_key=cfg.api_key,
            timeout=cfg.timeout_s,
            max_retries=0,  # retries are ours (tenacity), so they are counted and bounded
            **({"http_async_client": http_async_client} if http_async_client is not None else {}),
        )
        for url in cfg.base_urls
    ]


class ChatAgent:
    """An agent's access to its model: ``await agent.sample(messages, n=4)``."""

    def __init__(
        self,
        cfg: AgentConfig,
        *,
        models: Sequence[BaseChatModel] | None = None,
        cache: CallCache | None = None,
        meter: UsageMeter | None = None,
        limits: CallLimits | None = None,
    ) -> None:
        self.cfg = cfg
        self._given = list(models) if models is not None else None
        self.models = self._given if self._given is not None else openai_chat_models(cfg)
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[BaseChatModel]] = (
            weakref.WeakKeyDictionary()
        )
        if not self.models:
            raise ConfigError(f"agent {cfg.name!r} has no model")
        self._next_model = itertools.cycle(range(len(self.models)))
        self.cache = cache
        self.meter = meter if meter is not None else UsageMeter()
        self.limits = limits if limits is not None else CallLimits()

    @property
    def name(self) -> str:
        return self.cfg.name

    async def sample(
        self,
        messages: Sequence[Message],
        *,
        n: int | None = None,
        key: str = "",
        shared_prefix: int = 0,
        coalesce: bool = False,
        **overrides: Any,
    ) -> list[Reply]:
        """``n`` independent samples (default ``sampling.n``) for ``messages``.

        ``key`` names the call site (e.g. an exam id) so that identical prompts
        asked for different purposes stay distinct samples in the cache.
        ``shared_prefix``: how many leading messages other calls share; ``coalesce``: send
        identical calls in flight at once only once (see the module docs).
        """
        sampling = self.cfg.sampling.model_copy(update=overrides) if overrides else self.cfg.sampling
        count = n if n is not None else sampling.n
        prefix = cache_key(model=self.cfg.model, messages=list(messages[:shared_prefix])) if shared_prefix else None
        return list(
            await asyncio.gather(*(self._one(messages, sampling, i, key, prefix, coalesce) for i in range(count)))
        )

    async def _one(
        self, messages: Sequence[Message], sampling: Sampling, index: int, key: str, prefix: str | None = None,
        coalesce: bool = False,
    ) -> Reply:
        seed = None if sampling.seed is None else sampling.seed + index
        params = sampling.model_dump(exclude={"n", "seed"})
        ck = cache_key(model=self.cfg.model, messages=list(messages), params=params, seed=seed, index=index, key=key)
        if self.cache is not None and (hit := self.cache.get(ck)) is not None:
            reply = Reply(**{**hit, "cached": True})
            self.meter.of(self.name).add(reply, 0.0)
            return reply
        if not coalesce:
            return await self._fresh(ck, messages, params, seed, prefix)
        inflight, ident = self.limits.here().inflight, f"{ck}@{','.join(self.cfg.base_urls)}"
        if (same := inflight.get(ident)) is not None:
            reply = await asyncio.shield(same)
            self.meter.of(self.name).add(reply, 0.0)
            return reply
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        inflight[ident] = future
        try:
            reply = await self._fresh(ck, messages, params, seed, prefix)
            future.set_result(reply)
            return reply
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            inflight.pop(ident, None)

    async def _fresh(
        self, ck: str, messages: Sequence[Message], params: dict[str, Any], seed: int | None, prefix: str | None
    ) -> Reply:
        if self.limits.budget is not None:  # counted, or refused once the run's budget is spent
            return await self.limits.budget.spend(self._send, ck, messages, params, seed, prefix)
        return await self._send(ck, messages, params, seed, prefix)

    async def _send(
        self, ck: str, messages: Sequence[Message], params: dict[str, Any], seed: int | None, prefix: str | None
    ) -> Reply:
        started = time.perf_counter()
        reply = await self._prefix_turn(prefix, to_langchain(messages), params, seed)
        self.meter.of(self.name).add(reply, time.perf_counter() - started)
        if self.cache is not None:
            self.cache.put(ck, reply.to_dict())
        return reply

    async def _prefix_turn(
        self, prefix: str | None, messages: list[BaseMessage], params: dict[str, Any], seed: int | None
    ) -> Reply:
        """The first call with ``prefix`` streams and opens the turn at its first token; the rest wait for that."""
        if prefix is None:
            return await self._request(messages, params, seed)
        turns = self.limits.here().prefix_turns
        turn = turns.get(prefix)
        if turn is not None:
            await asyncio.shield(turn)
            return await self._request(messages, params, seed)
        turn = turns[prefix] = asyncio.get_running_loop().create_future()

        def open_turn() -> None:
            if not turn.done():
                turn.set_result(None)

        try:
            return await self._request(messages, params, seed, on_first_token=open_turn)
        finally:
            open_turn()  # failed or not: the others go ahead (and retry on their own)

    def _models_here(self) -> list[BaseChatModel]:
        """The chat models for this event loop: OpenAI clients get an HTTP client of their own per
        loop (pooled connections belong to the loop that made them); given models are used as they are."""
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        models = self._per_loop.get(loop)
        if models is None:
            import httpx

            client = httpx.AsyncClient(timeout=self.cfg.timeout_s, limits=httpx.Limits(max_connections=None,
                                                                                           max_keepalive_connections=256))
            models = self._per_loop[loop] = openai_chat_models(self.cfg, http_async_client=client)
        return models

    async def aclose(self) -> None:
        """Close the HTTP clients this event loop's requests used."""
        loop = asyncio.get_running_loop()
        for model in self._per_loop.pop(loop, []):
            client = getattr(model, "http_async_client", None)
            if client is not None:
                await client.aclose()

    async def _request(
        self,
        messages: list[BaseMessage],
        params: dict[str, Any],
        seed: int | None,
        on_first_token: Callable[[], None] | None = None,
    ) -> Reply:
        kwargs: dict[str, Any] = {
            "temperature": params["temperature"],
            "top_p": params["top_p"],
            "max_tokens": params["max_tokens"],
        }
        if seed is not None:
            kwargs["seed"] = seed
        extra: dict[str, Any] = {}
        if params.get("top_k") not in (None, -1):
            extra["top_k"] = params["top_k"]
        prefilled = bool(messages) and isinstance(messages[-1], AIMessage)
        if prefilled:  # the reply continues the final assistant message (its text is the continuation)
            extra.update(CONTINUE_FINAL_MESSAGE)
        if extra:
            kwargs["extra_body"] = extra
        model = self._models_here()[next(self._next_model)]
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.cfg.max_retries + 1),
                wait=wait_exponential_jitter(initial=1, max=30),
                retry=retry_if_exception(_transient),
                before_sleep=self._say_retrying,
                reraise=True,
            ):
                with attempt:
                    async with self.limits.here().limiter:
                        if on_first_token is None:
                            return _reply(await model.ainvoke(messages, **kwargs))
                        return await _streamed_reply(model, messages, kwargs, on_first_token)
        except Exception as exc:
            if prefilled and _refused_prefill(exc):
                where = getattr(model, "openai_api_base", None) or type(model).__name__
                raise EndpointError(refused_prefill_line(self.name, str(where), _first_line(exc))) from exc
            if _transient(exc):
                where = getattr(model, "openai_api_base", None) or type(model).__name__
                raise EndpointError(
                    f"agent {self.name!r}: endpoint {where} kept failing after {self.cfg.max_retries + 1} tries "
                    f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                    "finished work is saved, resume the run when the server is back"
                ) from exc
            if self._given is None and _bad_body(exc):  # our OpenAI clients could not read the reply
                where = getattr(model, "openai_api_base", None) or type(model).__name__
                raise EndpointError(
                    f"agent {self.name!r}: endpoint {where} answered with something that is not a chat completion "
                    f"({type(exc).__name__}: {_first_line(exc)}); is it an OpenAI-compatible server for "
                    f"model {self.cfg.model!r}?"
                ) from exc
            raise
        raise AssertionError("unreachable: tenacity returns or raises")

    RETRY_NOTICE_EVERY_S = 10.0
    """At most one ``retrying:`` line per agent in this many seconds."""

    def _say_retrying(self, state: Any) -> None:
        """tenacity's before_sleep: one stderr line (at most every 10 s per agent) while requests are retried."""
        now = time.monotonic()
        if now - getattr(self, "_retry_said_at", -float("inf")) < self.RETRY_NOTICE_EVERY_S:
            return
        self._retry_said_at = now
        exc = state.outcome.exception() if state.outcome is not None else None
        cause = _root_cause(exc)
        urls = ", ".join(self.cfg.base_urls) if self._given is None else type(self.models[0]).__name__
        print(
            f"retrying: agent {self.name!r} endpoint {urls} ({type(cause).__name__}), "
            f"attempt {state.attempt_number + 1}/{self.cfg.max_retries + 1}",
            file=sys.stderr, flush=True,
        )


def _reply(message: BaseMessage) -> Reply:
    text = message.text if isinstance(message.text, str) else str(message.content)
    return _with_usage(text, message.response_metadata.get("finish_reason"), message)


def _with_usage(text: str, finish_reason: str | None, message: BaseMessage) -> Reply:
    usage = getattr(message, "usage_metadata", None) or {}
    return Reply(
        text=text,
        finish_reason=finish_reason,
        prompt_tokens=int(usage.get("input_tokens", 0) or 0),
        completion_tokens=int(usage.get("output_tokens", 0) or 0),
    )


async def _streamed_reply(
    model: BaseChatModel, messages: list[BaseMessage], kwargs: dict[str, Any], on_first_token: Callable[[], None]
) -> Reply:
    full: BaseMessage | None = None
    async for chunk in model.astream(messages, stream_usage=True, **kwargs):
        on_first_token()
        full = chunk if full is None else full + chunk  # type: ignore[operator]
    if full is None:
        return Reply(text="")
    text = full.text if isinstance(full.text, str) else str(full.content)
    return _with_usage(text, full.response_metadata.get("finish_reason"), full)


async def check_prefill(agents: Sequence[AgentConfig], timeout_s: float = 60.0) -> None:
    """Fail fast, with one clear line, if an agent's endpoint will not continue a final assistant
    message (one tiny request per endpoint and model)."""
    import httpx

    seen: set[tuple[str, str]] = set()
    body = {"messages": [{"role": "user", "content": "Say OK."}, {"role": "assistant", "content": "OK"}],
            "max_tokens": 1, "temperature": 0.0, **CONTINUE_FINAL_MESSAGE}
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        for agent in agents:
            for url in agent.base_urls:
                if (url, agent.model) in seen:
                    continue
                seen.add((url, agent.model))
                try:
                    resp = await client.post(url.rstrip("/") + "/chat/completions", json={**body, "model": agent.model},
                                             headers={"Authorization": f"Bearer {agent.api_key}"})
                except httpx.HTTPError as exc:
                    raise EndpointError(f"agent {agent.name!r}: cannot reach {url} ({type(exc).__name__}); "
                                        "is the server running?") from None
                if resp.status_code >= 400:
                    raise EndpointError(refused_prefill_line(agent.name, url, f"HTTP {resp.status_code}: "
                                                             f"{_error_message(resp)}"))


def _error_message(resp: Any) -> str:
    try:
        message = resp.json().get("error", {}).get("message", "")
    except (ValueError, AttributeError):
        message = resp.text
    return (str(message).splitlines() or [""])[0][:200]


async def check_endpoints(agents: Sequence[AgentConfig], timeout_s: float = 10.0) -> None:
    """Fail fast, with one clear line, if an agent's endpoint or model is not there."""
    import httpx

    seen: set[tuple[str, str]] = set()
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        for agent in agents:
            for url in agent.base_urls:
                if (url, agent.model) in seen:
                    continue
                seen.add((url, agent.model))
                try:
                    resp = await client.get(
                        url.rstrip("/") + "/models", headers={"Authorization": f"Bearer {agent.api_key}"}
                    )
                    resp.raise_for_status()
                    served = {m.get("id") for m in resp.json().get("data", [])}
                except (httpx.HTTPError, ValueError) as exc:
                    raise EndpointError(
                        f"agent {agent.name!r}: cannot reach {url} ({type(exc).__name__}); "
                        "is the server running? (`lbt serve` starts the embedded classroom)"
                    ) from None
                if agent.model not in served:
                    raise EndpointError(
                        f"agent {agent.name!r}: {url} does not serve model {agent.model!r} "
                        f"(it serves: {', '.join(sorted(map(str, served))) or 'nothing'})"
                    )
