"""OpenAI wire shapes: completions, SSE chunks, usage and errors.  Tokens are whitespace-separated words."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from json.encoder import encode_basestring as _string
from typing import Any

from lbt_agents.stub._responders import text_of

_WORD = re.compile(r"\S+")
_PIECE = re.compile(r"\s*\S+")
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def dumps(obj: Any) -> bytes:
    return _json(obj).encode()


def error_body(status: int, message: str, kind: str = "invalid_request_error") -> bytes:
    """An OpenAI-style error document (the openai client shows ``message``)."""
    if status >= 500:
        kind = "server_error"
    elif status == 404:
        kind = "NotFoundError"
    return dumps({"error": {"message": message, "type": kind, "param": None, "code": status}})


class InvalidRequest(Exception):
    """The request body is not a valid completion request (answered with 400)."""


def words(text: str) -> int:
    return len(_WORD.findall(text))


def prompt_tokens(body: dict[str, Any]) -> int:
    """Words in the messages' contents (chat) or the prompt(s) (completions)."""
    messages = body.get("messages")
    if isinstance(messages, list):
        return sum(words(text_of(m.get("content"))) for m in messages if isinstance(m, dict))
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return words(prompt)
    if isinstance(prompt, list):
        return sum(words(p) if isinstance(p, str) else len(p) if isinstance(p, list) else 1 for p in prompt)
    return 0


@dataclass(frozen=True, slots=True)
class Params:
    """The request fields the stub honours."""

    model: str
    n: int
    stream: bool
    include_usage: bool
    max_tokens: int | None
    stop: tuple[str, ...]


def params(body: Any, default_model: str) -> Params:
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    if "messages" in body and not isinstance(body["messages"], list):
        raise InvalidRequest("'messages' must be a list")
    n = body.get("n")
    n = 1 if n is None else n
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InvalidRequest(f"'n' must be a positive integer, not {n!r}")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0):
        raise InvalidRequest(f"'max_tokens' must be a non-negative integer, not {max_tokens!r}")
    stop = body.get("stop") or ()
    stop = (stop,) if isinstance(stop, str) else tuple(s for s in stop if isinstance(s, str) and s)
    options = body.get("stream_options")
    include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
    model = body.get("model")
    return Params(
        model=model if isinstance(model, str) and model else default_model, n=n, stream=bool(body.get("stream")),
        include_usage=include_usage, max_tokens=max_tokens, stop=stop,
    )  # fmt: skip


def finish(text: str, p: Params) -> tuple[str, str, int]:
    """The reply cut at a stop string and at ``max_tokens`` words: (text, finish_reason, completion tokens)."""
    cuts = [at for s in p.stop if (at := text.find(s)) >= 0]
    if cuts:
        text = text[: min(cuts)]
    if p.max_tokens is not None:
        found = _WORD.findall(text)
        if len(found) > p.max_tokens:
            if p.max_tokens == 0:
                return "", "length", 0
            ends = [m.end() for m in _WORD.finditer(text)]
            return text[: ends[p.max_tokens - 1]], "length", p.max_tokens
        return text, "stop", len(found)
    return text, "stop", words(text)


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion(
    chat: bool, rid: str, created: int, model: str, replies: list[tuple[str, str, int]], prompt: int
) -> bytes:
    """A whole (non-streamed) ``chat.completion`` or ``text_completion``."""
    if chat:
        choices = [
            {"index": i, "message": {"role": "assistant", "content": text}, "logprobs": None, "finish_reason": reason}
            for i, (text, reason, _) in enumerate(replies)
        ]  # fmt: skip
    else:
        choices = [
            {"index": i, "text": text, "logprobs": None, "finish_reason": reason}
            for i, (text, reason, _) in enumerate(replies)
        ]  # fmt: skip
    return dumps({
        "id": rid, "object": "chat.completion" if chat else "text_completion", "created": created, "model": model,
        "choices": choices, "usage": usage(prompt, sum(r[2] for r in replies)), "system_fingerprint": None,
    })  # fmt: skip


def pieces(text: str) -> list[str]:
    """The reply split into streamed deltas, one word each (with its leading whitespace); they join to ``text``."""
    found = _PIECE.findall(text)
    rest = text[sum(map(len, found)) :]
    if rest:
        found = [*found[:-1], found[-1] + rest] if found else [rest]
    return found


def stream(
    chat: bool, rid: str, created: int, model: str, replies: list[tuple[str, str, int]], prompt: int,
    include_usage: bool,
) -> bytes:  # fmt: skip
    """The SSE body of a streamed reply: a role chunk, one chunk per word, a finish chunk per choice,
    the usage chunk (``choices: []``) when asked for, then ``data: [DONE]``.  Chunks are built from
    byte templates: only each word is JSON-encoded, which keeps a long streamed reply cheap."""
    head = {"id": rid, "object": "chat.completion.chunk" if chat else "text_completion", "created": created, "model": model}
    if include_usage:
        head["usage"] = None
    prefix = b"data: " + dumps(head)[:-1] + b',"choices":[{"index":'
    field = b'"delta":{"content":' if chat else b'"text":'
    close = b"}" if chat else b""
    events: list[bytes] = []
    for i, (text, reason, _) in enumerate(replies):
        start = prefix + str(i).encode() + b","
        if chat:
            events.append(start + b'"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n')
        middle = start + field
        end = close + b',"logprobs":null,"finish_reason":null}]}\n\n'
        events += [middle + _string(piece).encode() + end for piece in pieces(text)]
        last = b'"delta":{}' if chat else b'"text":""'
        events.append(start + last + b',"logprobs":null,"finish_reason":' + _string(reason).encode() + b"}]}\n\n")
    if include_usage:
        final = {**head, "choices": [], "usage": usage(prompt, sum(r[2] for r in replies))}
        events.append(b"data: " + dumps(final) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return b"".join(events)
