"""A minimal HTTP/1.1 server on asyncio streams: keep-alive, Content-Length or chunked request bodies.

Just enough HTTP for OpenAI-compatible clients (httpx, aiohttp, curl, wrk); every response is one
write with a Content-Length, which keeps the per-request cost a few tens of microseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024

_REASONS = {
    100: "Continue", 200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
    413: "Payload Too Large", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
}  # fmt: skip


@dataclass(slots=True)
class Request:
    method: str
    path: str
    body: bytes


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    content_type: bytes = b"application/json"


Handler = Callable[[Request], Awaitable[Response]]


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def encode(response: Response, *, keep_alive: bool) -> bytes:
    """The response's bytes on the wire."""
    reason = _REASONS.get(response.status, "Unknown")
    return b"".join((
        b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n" % (
            response.status, reason.encode(), response.content_type, len(response.body)),
        b"" if keep_alive else b"connection: close\r\n",
        b"\r\n",
        response.body,
    ))  # fmt: skip


class HttpServer:
    """Serves ``handler`` on ``host:port`` until ``close()``; tracks its connections so closing ends them too."""

    def __init__(self, handler: Handler, error_body: Callable[[int, str], bytes]) -> None:
        self._handler = handler
        self._error_body = error_body
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (useful with ``port=0``)."""
        self._server = await asyncio.start_server(self._connection, host, port, limit=MAX_HEADER_BYTES)
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:  # close() ends idle keep-alive connections; finish quietly
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = self._handler
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return  # the client closed the connection between requests
            except asyncio.LimitOverrunError:
                writer.write(encode(Response(431, self._error_body(431, "request headers too large")), keep_alive=False))
                return
            try:
                method, path, keep_alive, length, chunked, expect = _parse_head(head)
                if expect:
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                body = await _read_chunked(reader) if chunked else (await reader.readexactly(length) if length else b"")
            except _BadRequest as exc:
                writer.write(encode(Response(exc.status, self._error_body(exc.status, str(exc))), keep_alive=False))
                return
            try:
                response = await handler(Request(method, path, body))
            except Exception as exc:  # noqa: BLE001 - a broken handler answers 500, the server stays up
                response = Response(500, self._error_body(500, f"{type(exc).__name__}: {exc}"))
            writer.write(encode(response, keep_alive=keep_alive))
            await writer.drain()
            if not keep_alive:
                return


def _parse_head(head: bytes) -> tuple[str, str, bool, int, bool, bool]:
    """method, path, keep-alive, content length, chunked body, expects 100-continue."""
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, path, version = lines[0].split(" ")
    except ValueError:
        raise _BadRequest(400, f"malformed request line {lines[0][:80]!r}") from None
    keep_alive = version == "HTTP/1.1"
    length, chunked, expect = 0, False, False
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name = name.strip().lower()
        if name == "content-length":
            try:
                length = int(value)
            except ValueError:
                raise _BadRequest(400, "content-length is not a number") from None
            if length < 0 or length > MAX_BODY_BYTES:
                raise _BadRequest(413, f"request body over {MAX_BODY_BYTES} bytes")
        elif name == "connection":
            token = value.strip().lower()
            keep_alive = token == "keep-alive" or (keep_alive and token != "close")
        elif name == "transfer-encoding":
            chunked = "chunked" in value.lower()
        elif name == "expect":
            expect = value.strip().lower() == "100-continue"
    return method, path.partition("?")[0], keep_alive, length, chunked, expect


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0], 16)
        except ValueError:
            raise _BadRequest(400, "malformed chunk size") from None
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return b"".join(parts)
        total += size
        if total > MAX_BODY_BYTES:
            raise _BadRequest(413, f"request body over {MAX_BODY_BYTES} bytes")
        parts.append((await reader.readexactly(size + 2))[:-2])
