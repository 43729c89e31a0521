"""The stub's routes and state: what it answers, what it counts, which faults it injects."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from dataclasses import dataclass
from typing import Any

from lbt_agents.stub import _openai as oai
from lbt_agents.stub._http import Request, Response
from lbt_agents.stub._responders import Responder, echo, load_script

DEFAULT_MODEL = "stub"


@dataclass(frozen=True)
class StubConfig:
    """How a stub answers (picklable when ``respond`` is, so a separate process can serve it)."""

    respond: Responder | None = None
    """``respond(request_body, choice_index) -> str``; ``None``: echo the last user message."""
    script: str | None = None
    """A Python file defining ``respond`` (loaded where the server runs)."""
    models: tuple[str, ...] = ()
    """Model names it serves; empty: every name it is asked for."""
    delay_ms: float = 0.0
    """Wait this long before answering each completion request."""
    fail_first: int = 0
    """Answer the first N completion requests with ``fail_status``."""
    fail_status: int = 500
    record_bodies: bool = False
    """Keep every completion request's body (off by default: it costs memory and time)."""
    record_to: str | None = None
    """Append every completion request's JSON body to this JSON-lines file (a run of any size: nothing
    kept in memory; complete up to the last request once the stats have been read; not emptied by a reset)."""
    continue_final_message: bool = True
    """Accept chat requests that continue the final assistant message (vLLM's ``continue_final_message``);
    ``False``: answer them with 400, as an endpoint without the feature does."""


class StubApp:
    """Answers requests for one server; counts every completion request it receives."""

    def __init__(self, config: StubConfig) -> None:
        self.config = config
        self.requests = 0
        """Completion requests received (chat and text), faulted and invalid ones included."""
        self.failed = 0
        """Requests answered with an injected fault."""
        self.in_flight = self.peak_in_flight = 0
        """Completion requests being answered now, and the most at once (with ``delay_ms``, what a client overlaps)."""
        self.bodies: list[Any] = []
        self._faults_left = config.fail_first
        self._respond = load_script(config.script) if config.script else config.respond or echo
        self._default_model = config.models[0] if config.models else DEFAULT_MODEL
        self._models = frozenset(config.models)
        self._models_body = oai.dumps({
            "object": "list",
            "data": [{"id": m, "object": "model", "created": 0, "owned_by": "lbt-stub"} for m in config.models or (DEFAULT_MODEL,)],
        })  # fmt: skip
        self._record_to = open(config.record_to, "ab") if config.record_to else None  # noqa: SIM115 (closed in close())

    def reset(self) -> None:
        """Zero the counters and forget the recorded bodies (faults already injected stay injected)."""
        self.requests = self.failed = self.peak_in_flight = 0
        self.bodies = []

    def flush(self) -> None:
        if self._record_to is not None:
            self._record_to.flush()

    def close(self) -> None:
        if self._record_to is not None:
            self._record_to.close()
            self._record_to = None

    def stats(self) -> dict[str, int]:
        self.flush()
        return {"requests": self.requests, "failed": self.failed, "bodies": len(self.bodies),
                "peak_in_flight": self.peak_in_flight}

    async def handle(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path == "/v1/chat/completions" or path == "/v1/completions":
            if method != "POST":
                return _error(405, f"{method} {path}: use POST")
            return await self._generate(request.body, chat=path == "/v1/chat/completions")
        if method == "GET":
            if path == "/v1/models":
                return Response(200, self._models_body)
            if path.startswith("/v1/models/"):
                name = path.removeprefix("/v1/models/")
                if self._models and name not in self._models:
                    return _error(404, f"The model `{name}` does not exist.")
                return Response(200, oai.dumps({"id": name, "object": "model", "created": 0, "owned_by": "lbt-stub"}))
            if path == "/health":
                return Response(200, b"{}")
            if path == "/stub/stats":
                return Response(200, oai.dumps(self.stats()))
            if path == "/stub/bodies":
                return Response(200, oai.dumps(self.bodies))
        if path == "/stub/reset" and method == "POST":
            self.reset()
            return Response(200, oai.dumps(self.stats()))
        return _error(404, f"no route {method} {path}")

    async def _generate(self, raw: bytes, *, chat: bool) -> Response:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self._answer(raw, chat=chat)
        finally:
            self.in_flight -= 1

    async def _answer(self, raw: bytes, *, chat: bool) -> Response:
        self.requests += 1
        number = self.requests
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "the request body is not JSON")
        config = self.config
        if config.record_bodies:
            self.bodies.append(body)
        if self._record_to is not None:
            self._record_to.write(raw.replace(b"\n", b" ") + b"\n")  # JSON keeps no raw newline inside a string
        if config.delay_ms > 0:
            await asyncio.sleep(config.delay_ms / 1000)
        if self._faults_left > 0:
            self._faults_left -= 1
            self.failed += 1
            fault = config.fail_first - self._faults_left
            return _error(config.fail_status, f"injected fault {fault} of {config.fail_first}")
        try:
            p = oai.params(body, self._default_model)
            if chat and not body.get("messages"):
                raise oai.InvalidRequest("'messages' is required and must not be empty")
            if not chat and "prompt" not in body:
                raise oai.InvalidRequest("'prompt' is required")
            if chat and body.get("continue_final_message"):
                if not config.continue_final_message:
                    raise oai.InvalidRequest("Unrecognized request argument supplied: continue_final_message")
                if body.get("add_generation_prompt", True):
                    raise oai.InvalidRequest("Cannot set both `continue_final_message` and `add_generation_prompt` to True.")
        except oai.InvalidRequest as exc:
            return _error(400, str(exc))
        if self._models and p.model not in self._models:
            return _error(404, f"The model `{p.model}` does not exist.")
        try:
            replies = await self._replies(body, p, chat)
        except Exception as exc:  # noqa: BLE001 - a scripted responder's bug is the test's answer, not a crash
            return _error(500, f"respond raised {type(exc).__name__}: {exc}")
        rid = f"{'chatcmpl' if chat else 'cmpl'}-stub-{number}"
        prompt = oai.prompt_tokens(body)
        if p.stream:
            sse = oai.stream(chat, rid, int(time.time()), p.model, replies, prompt, p.include_usage)
            return Response(200, sse, b"text/event-stream")
        return Response(200, oai.completion(chat, rid, int(time.time()), p.model, replies, prompt))

    async def _replies(self, body: dict[str, Any], p: oai.Params, chat: bool) -> list[tuple[str, str, int]]:
        bodies = [body]
        prompt = body.get("prompt")
        if not chat and isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
            bodies = [{**body, "prompt": one} for one in prompt]  # a batch of prompts: n choices for each
        replies = []
        for one in bodies:
            for _ in range(p.n):
                text = self._respond(one, len(replies))
                if inspect.isawaitable(text):
                    text = await text
                if not isinstance(text, str):
                    raise TypeError(f"respond returned {type(text).__name__}, not str")
                replies.append(oai.finish(text, p))
        return replies


def _error(status: int, message: str) -> Response:
    return Response(status, oai.error_body(status, message))
