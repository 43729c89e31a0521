"""Tiny raw HTTP servers for run tests: one that answers chat requests with garbage, one that hangs."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def _response(status: int, body: bytes, content_type: str = "application/json") -> bytes:
    head = f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return head.encode() + body


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, models: tuple[str, ...],
                  chat_body: bytes, counts: dict[str, int]) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.decode("latin-1").split("\r\n"):
            if line.lower().startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        if length:
            await reader.readexactly(length)
        path = head.split(b" ", 2)[1].decode()
        if path.endswith("/models"):
            body = json.dumps({"object": "list", "data": [{"id": m, "object": "model"} for m in models]}).encode()
            writer.write(_response(200, body))
        else:
            counts["chat"] += 1
            writer.write(_response(200, chat_body))
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@contextmanager
def garbage_server(models: tuple[str, ...], chat_body: bytes = b"<html>not json at all") -> Iterator[tuple[str, dict[str, int]]]:
    """Serves ``/v1/models`` properly and answers every chat request with ``chat_body`` (status 200);
    yields the base URL and the request counts.  Listens on 127.0.0.1; stopped on exit."""
    loop = asyncio.new_event_loop()
    counts = {"chat": 0}
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: _handle(r, w, models, chat_body, counts), "127.0.0.1", 0)
        holder["server"] = server
        holder["port"] = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await server.serve_forever()

    thread = threading.Thread(target=lambda: loop.run_until_complete(_quiet(main())), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield f"http://127.0.0.1:{holder['port']}/v1", counts
    finally:
        loop.call_soon_threadsafe(holder["server"].close)  # type: ignore[attr-defined]
        thread.join(10)
        loop.close()


async def _quiet(coro) -> None:  # type: ignore[no-untyped-def]
    try:
        await coro
    except asyncio.CancelledError:
        pass
