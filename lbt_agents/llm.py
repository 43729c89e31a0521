"""Model access for agents: one :class:`ChatAgent` per configured agent.

A ``ChatAgent`` wraps LangChain chat models (:class:`OpenAIChat`, a light client
of OpenAI-compatible endpoints, for configured agents, or any ``BaseChatModel``
such as ``ChatOpenAI`` or the offline :class:`lbt_agents.testing.ScriptedChatModel`)
and adds what long teaching runs need: bounded concurrency, retries with backoff,
a call cache that keeps samples distinct, replica routing, and token accounting.

``n`` samples of one prompt go to a configured endpoint as one request with ``n``
(the prompt is computed once); each sample is cached on its own (sample ``i``'s
key holds ``i`` and seed ``seed + i``), so a resumed run asks only for the missing
ones, and samples a backend did not return are asked for one per request.  Given
models get one request per sample.

With several replicas (``base_url`` list), a call's ``route`` (e.g. its TR-TA pair)
picks its replica on a consistent-hash ring, so all exams of a pair meet one
replica's prefix cache; calls without a route go round-robin.

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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from lbt_agents._openai_chat import (
    BadReplyError,
    EndpointStatusError,
    OpenAIChat,
    new_session,
)
from lbt_agents.budget import Budget
from lbt_agents.cache import CallCache, cache_key
from lbt_agents.config import EMBEDDED, AgentConfig
from lbt_agents.errors import ConfigError, EndpointError
from lbt_agents.paper._prompts import CONTINUE_FINAL_MESSAGE
from lbt_agents.routing import HashRing

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

    def add_request(self, replies: Sequence[Reply], wall_s: float) -> None:
        """One request that returned several samples (its prompt counted once)."""
        self.requests += 1
        self.wall_s += wall_s
        self.prompt_tokens += replies[0].prompt_tokens if replies else 0
        self.completion_tokens += sum(r.completion_tokens for r in replies)


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
    prefix_turns: dict[int, asyncio.Future[None]] = field(default_factory=dict)
    inflight: dict[str, asyncio.Future[Reply]] = field(default_factory=dict)


def _prefix_key(model: str, messages: Sequence[Message]) -> int:
    """What identifies a shared prefix within this process: a hash (strings cache theirs, so this is
    cheap, and it does not hold the prompt in memory); a collision only makes a call wait for another's
    first token."""
    return hash((model, *((m["role"], m["content"]) for m in messages)))


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
    import aiohttp
    import httpx
    import openai

    if isinstance(exc, EndpointStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    if isinstance(exc, aiohttp.ClientResponseError):
        return exc.status in (408, 409, 429) or exc.status >= 500
    if isinstance(exc, aiohttp.ClientError):
        return True  # connection refused or dropped, a cut-off body
    if isinstance(exc, (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    if isinstance(exc, openai.APIError):
        return True  # the server reported an error mid-stream (e.g. vLLM's engine stopping): its fault, not ours
    return isinstance(exc, (httpx.TransportError, asyncio.TimeoutError, ConnectionError))


def _bad_body(exc: BaseException) -> bool:
    """A reply our client could not read as a chat completion (garbage, empty or the wrong shape)."""
    return isinstance(exc, BadReplyError)


def _root_cause(exc: BaseException | None) -> BaseException | None:
    """The transport error under a client's wrapper (openai's APIConnectionError wraps httpx's ConnectError)."""
    import aiohttp
    import httpx

    seen, visited = exc, set()
    while seen is not None and id(seen) not in visited:
        if isinstance(seen, (httpx.HTTPError, aiohttp.ClientError)):
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

    if not isinstance(exc, (openai.APIStatusError, EndpointStatusError)) or not 400 <= exc.status_code < 500:
        return False
    text = str(exc).lower()
    return exc.status_code not in (408, 409, 429) and any(word in text for word in _PREFILL_WORDS)


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0][:200] if text else ""


def openai_chat_models(cfg: AgentConfig, session: Any = None) -> list[BaseChatModel]:
    """One :class:`OpenAIChat` per base URL of ``cfg`` (replicas); ``session``: the aiohttp
    session they share (connections belong to one event loop)."""
    if EMBEDDED in cfg.base_urls:
        raise ConfigError(
            f"agent {cfg.name!r} still points at the embedded classroom; start it first "
            "(lbt runs do this for you) or set base_url to an OpenAI-compatible URL"
        )
    return [
        OpenAIChat(model=cfg.model, base_url=url, api_key=cfg.api_key, timeout_s=cfg.timeout_s, session=session)
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
        names = cfg.base_urls if self._given is None else [str(i) for i in range(len(self.models))]
        self._ring = HashRing(names)
        self._ring_index = {name: i for i, name in enumerate(names)}
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
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
        route: str | None = None,
        **overrides: Any,
    ) -> list[Reply]:
        """``n`` independent samples (default ``sampling.n``) for ``messages``.

        ``key`` names the call site (e.g. an exam id) so that identical prompts
        asked for different purposes stay distinct samples in the cache.
        ``shared_prefix``: how many leading messages other calls share; ``coalesce``: send
        identical calls in flight at once only once; ``route``: what picks the replica
        (calls with the same route go to the same one); see the module docs.
        """
        sampling = self.cfg.sampling.model_copy(update=overrides) if overrides else self.cfg.sampling
        count = n if n is not None else sampling.n
        params = sampling.model_dump(exclude={"n", "seed"})
        if count > 1 and not coalesce and self._given is None:
            return await self._batch(messages, params, sampling.seed, count, key, route)
        prefix = _prefix_key(self.cfg.model, messages[:shared_prefix]) if shared_prefix else None
        seeds = [None if sampling.seed is None else sampling.seed + i for i in range(count)]
        if count == 1:
            return [await self._one(messages, params, seeds[0], 0, key, prefix, coalesce, route)]
        return list(await asyncio.gather(
            *(self._one(messages, params, seeds[i], i, key, prefix, coalesce, route) for i in range(count))
        ))  # fmt: skip

    def _key(self, messages: Sequence[Message], params: dict[str, Any], seed: int | None, index: int, key: str) -> str:
        return cache_key(model=self.cfg.model, messages=list(messages), params=params, seed=seed, index=index, key=key)

    def _cached(self, ck: str) -> Reply | None:
        if self.cache is None or (hit := self.cache.get(ck)) is None:
            return None
        reply = Reply(**{**hit, "cached": True})
        self.meter.of(self.name).add(reply, 0.0)
        return reply

    async def _batch(
        self, messages: Sequence[Message], params: dict[str, Any], base_seed: int | None, count: int, key: str,
        route: str | None,
    ) -> list[Reply]:
        """``count`` samples: the cached ones from the cache, the rest in one request with ``n``
        (and one request per sample for any the backend did not return)."""
        seeds = [None if base_seed is None else base_seed + i for i in range(count)]
        keys = [self._key(messages, params, seeds[i], i, key) if self.cache is not None else "" for i in range(count)]
        replies: list[Reply | None] = [self._cached(ck) if ck else None for ck in keys]
        missing = [i for i, r in enumerate(replies) if r is None]
        if not missing:
            return replies  # type: ignore[return-value]
        started, budget = time.perf_counter(), self.limits.budget
        if budget is not None:  # one request, counted (or refused) like any other
            await budget.admit()
        try:
            fresh = await self._request(to_langchain(messages), params, seeds[missing[0]], n=len(missing), route=route)
        except BaseException:
            if budget is not None:
                budget.settle()
            raise
        fresh = fresh[: len(missing)]
        if budget is not None:
            budget.settle(fresh[0].prompt_tokens if fresh else 0, sum(r.completion_tokens for r in fresh))
        self.meter.of(self.name).add_request(fresh, time.perf_counter() - started)
        for i, reply in zip(missing, fresh):
            replies[i] = reply
            if self.cache is not None:
                self.cache.put(keys[i], reply.to_dict())
        rest = missing[len(fresh):]  # a backend that ignores n: one request per missing sample
        if rest:
            more = await asyncio.gather(*(self._one(messages, params, seeds[i], i, key, None, False, route) for i in rest))
            for i, reply in zip(rest, more):
                replies[i] = reply
        return replies  # type: ignore[return-value]

    async def _one(
        self, messages: Sequence[Message], params: dict[str, Any], seed: int | None, index: int, key: str,
        prefix: int | None = None, coalesce: bool = False, route: str | None = None,
    ) -> Reply:  # fmt: skip
        if self.cache is None and not coalesce:  # no key needed: skip hashing the prompt
            return await self._fresh("", messages, params, seed, prefix, route)
        ck = self._key(messages, params, seed, index, key)
        if (hit := self._cached(ck)) is not None:
            return hit
        if not coalesce:
            return await self._fresh(ck, messages, params, seed, prefix, route)
        inflight, ident = self.limits.here().inflight, f"{ck}@{','.join(self.cfg.base_urls)}"
        if (same := inflight.get(ident)) is not None:
            reply = await asyncio.shield(same)
            self.meter.of(self.name).add(reply, 0.0)
            return reply
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        inflight[ident] = future
        try:
            reply = await self._fresh(ck, messages, params, seed, prefix, route)
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
        self, ck: str, messages: Sequence[Message], params: dict[str, Any], seed: int | None, prefix: int | None,
        route: str | None,
    ) -> Reply:  # fmt: skip
        if self.limits.budget is not None:  # counted, or refused once the run's budget is spent
            return await self.limits.budget.spend(self._send, ck, messages, params, seed, prefix, route)
        return await self._send(ck, messages, params, seed, prefix, route)

    async def _send(
        self, ck: str, messages: Sequence[Message], params: dict[str, Any], seed: int | None, prefix: int | None,
        route: str | None,
    ) -> Reply:  # fmt: skip
        started = time.perf_counter()
        reply = await self._prefix_turn(prefix, to_langchain(messages), params, seed, route)
        self.meter.of(self.name).add(reply, time.perf_counter() - started)
        if self.cache is not None:
            self.cache.put(ck, reply.to_dict())
        return reply

    async def _prefix_turn(
        self, prefix: int | None, messages: list[BaseMessage], params: dict[str, Any], seed: int | None,
        route: str | None,
    ) -> Reply:  # fmt: skip
        """The first call with ``prefix`` streams and opens the turn at its first token; the rest wait for that."""
        if prefix is None:
            [reply] = await self._request(messages, params, seed, route=route)
            return reply
        turns = self.limits.here().prefix_turns
        turn = turns.get(prefix)
        if turn is not None:
            await asyncio.shield(turn)
            [reply] = await self._request(messages, params, seed, route=route)
            return reply
        turn = turns[prefix] = asyncio.get_running_loop().create_future()

        def open_turn() -> None:
            if not turn.done():
                turn.set_result(None)

        try:
            [reply] = await self._request(messages, params, seed, route=route, on_first_token=open_turn)
            return reply
        finally:
            open_turn()  # failed or not: the others go ahead (and retry on their own)

    def replica(self, route: str | None = None) -> int:
        """The index of the replica (model) a call with ``route`` goes to (round-robin without one)."""
        if route is None or len(self.models) == 1:
            return next(self._next_model)
        return self._ring_index[self._ring.node(route)]

    def _models_here(self) -> list[BaseChatModel]:
        """The chat models for this event loop: configured endpoints get an HTTP session of their own per
        loop (pooled connections belong to the loop that made them); given models are used as they are."""
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        models = self._per_loop.get(loop)
        if models is None:
            session = self._sessions[loop] = new_session(self.cfg.timeout_s)
            models = self._per_loop[loop] = openai_chat_models(self.cfg, session=session)
        return models

    async def aclose(self) -> None:
        """Close the HTTP connections this event loop's requests used."""
        loop = asyncio.get_running_loop()
        self._per_loop.pop(loop, None)
        session = self._sessions.pop(loop, None)
        if session is not None:
            await session.close()

    async def _request(
        self,
        messages: list[BaseMessage],
        params: dict[str, Any],
        seed: int | None,
        *,
        n: int = 1,
        route: str | None = None,
        on_first_token: Callable[[], None] | None = None,
    ) -> list[Reply]:
        kwargs: dict[str, Any] = {
            "temperature": params["temperature"],
            "top_p": params["top_p"],
            "max_tokens": params["max_tokens"],
        }
        if seed is not None:
            kwargs["seed"] = seed
        if n > 1:
            kwargs["n"] = n
        extra: dict[str, Any] = {}
        if params.get("top_k") not in (None, -1):
            extra["top_k"] = params["top_k"]
        prefilled = bool(messages) and isinstance(messages[-1], AIMessage)
        if prefilled:  # the reply continues the final assistant message (its text is the continuation)
            extra.update(CONTINUE_FINAL_MESSAGE)
        if extra:
            kwargs["extra_body"] = extra
        model = self._models_here()[self.replica(route)]
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
                        if on_first_token is not None:
                            return [await _streamed_reply(model, messages, kwargs, on_first_token)]
                        if n == 1:
                            return [_reply(await model.ainvoke(messages, **kwargs))]
                        return await _generated_replies(model, messages, kwargs)
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


async def _generated_replies(model: BaseChatModel, messages: list[BaseMessage], kwargs: dict[str, Any]) -> list[Reply]:
    """The ``n`` choices of one request, through ``agenerate`` (with the run's callbacks, as ``ainvoke``
    would); the request's prompt tokens go to the first choice (the prompt was sent once) and its
    completion tokens are shared out evenly (the API reports only their sum)."""
    from langchain_core.runnables.config import ensure_config

    config = ensure_config()
    result = await model.agenerate(
        [messages], callbacks=config.get("callbacks"), tags=config.get("tags"), metadata=config.get("metadata"),
        run_name=config.get("run_name"), **kwargs,
    )  # fmt: skip
    generations = result.generations[0]
    if not generations:
        return []
    first = _reply(generations[0].message)  # type: ignore[attr-defined]
    share, extra = divmod(first.completion_tokens, len(generations))
    return [
        Reply(
            text=g.text,
            finish_reason=g.message.response_metadata.get("finish_reason"),  # type: ignore[attr-defined]
            prompt_tokens=first.prompt_tokens if i == 0 else 0,
            completion_tokens=share + (i < extra),
        )
        for i, g in enumerate(generations)
    ]


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

    body = {"messages": [{"role": "user", "content": "Say OK."}, {"role": "assistant", "content": "OK"}],
            "max_tokens": 1, "temperature": 0.0, **CONTINUE_FINAL_MESSAGE}
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        for agent, url in _each_endpoint(agents):
            try:
                resp = await client.post(url.rstrip("/") + "/chat/completions", json={**body, "model": agent.model},
                                         headers={"Authorization": f"Bearer {agent.api_key}"})
            except httpx.HTTPError as exc:
                raise EndpointError(f"agent {agent.name!r}: cannot reach {url} ({type(exc).__name__}); "
                                    "is the server running?") from None
            if resp.status_code >= 400:
                raise EndpointError(refused_prefill_line(agent.name, url, f"HTTP {resp.status_code}: "
                                                         f"{_error_message(resp)}"))


def _each_endpoint(agents: Sequence[AgentConfig]) -> Iterator[tuple[AgentConfig, str]]:
    """Each (agent, base URL) once per distinct (URL, model)."""
    seen: set[tuple[str, str]] = set()
    for agent in agents:
        for url in agent.base_urls:
            if (url, agent.model) not in seen:
                seen.add((url, agent.model))
                yield agent, url


def _error_message(resp: Any) -> str:
    try:
        message = resp.json().get("error", {}).get("message", "")
    except (ValueError, AttributeError):
        message = resp.text
    return (str(message).splitlines() or [""])[0][:200]


async def check_endpoints(agents: Sequence[AgentConfig], timeout_s: float = 10.0) -> None:
    """Fail fast, with one clear line, if an agent's endpoint or model is not there."""
    import httpx

    async with httpx.AsyncClient(timeout=timeout_s) as client:
        for agent, url in _each_endpoint(agents):
            try:
                resp = await client.get(url.rstrip("/") + "/models", headers={"Authorization": f"Bearer {agent.api_key}"})
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
