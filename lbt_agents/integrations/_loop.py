"""One background event loop per process, for the synchronous adapters.

``asyncio.run`` per call would give every call a new loop, and an OpenAI client's pooled
connections, made on the last loop, then fail ("Event loop is closed").  So every adapter call
runs on this one loop, started on first use in a daemon thread and stopped at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def _running_loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None or not _thread or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            started = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(started.set)
                loop.run_forever()

            thread = threading.Thread(target=run, name="lbt-integrations-loop", daemon=True)
            thread.start()
            started.wait()
            _loop, _thread = loop, thread
        return _loop


def run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run the coroutine ``make()`` on the background loop and wait for its result (from any
    thread, with or without a running event loop of its own)."""
    loop = _running_loop()
    if threading.current_thread() is _thread:
        raise RuntimeError("run_sync was called from the adapters' own event loop; await the coroutine instead")

    async def call() -> T:
        return await make()

    future = asyncio.run_coroutine_threadsafe(call(), loop)
    try:
        return future.result()
    except BaseException:  # an interrupted caller (Ctrl-C) stops its scoring too
        future.cancel()
        raise


def shutdown() -> None:
    """Stop the background loop (it starts again on the next call)."""
    global _loop, _thread
    with _lock:
        loop, thread, _loop, _thread = _loop, _thread, None, None
    if loop is None or thread is None:
        return
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    if not thread.is_alive():
        loop.close()


atexit.register(shutdown)
