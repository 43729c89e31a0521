"""``StubServer``: the stub in a background thread (its own event loop) or in a separate process."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import http.client
import ipaddress
import json
import multiprocessing
import os
import pickle
import signal
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Self

from lbt_agents.errors import ConfigError
from lbt_agents.stub._app import StubApp, StubConfig
from lbt_agents.stub._http import HttpServer
from lbt_agents.stub._openai import error_body
from lbt_agents.stub._responders import FixedText, Responder

_START_TIMEOUT_S = 30.0


def check_host(host: str, allow_remote: bool) -> None:
    """Refuse a non-loopback address unless ``allow_remote``."""
    if allow_remote or host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"refusing to listen on {host}: the stub answers anyone who reaches it; use 127.0.0.1 or pass --allow-remote"
        )


def base_url(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/v1"


async def serve(config: StubConfig, host: str, port: int, stop: asyncio.Event, ready: Callable[[StubApp, int], None]) -> StubApp:
    """Serve ``config`` on ``host:port`` until ``stop`` is set; ``ready(app, bound_port)`` runs once listening.
    A port in use raises ``ConfigError``."""
    app = StubApp(config)
    try:
        server = HttpServer(app.handle, error_body)
        try:
            bound = await server.start(host, port)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {port} on {host} is in use; pick another (port 0 picks a free one)") from None
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        try:
            ready(app, bound)
            await stop.wait()
        finally:
            await server.close()
    finally:
        app.close()
    return app


class StubServer:
    """A stub OpenAI-compatible server for tests and benchmarks, as a context manager::

        with StubServer(respond=lambda body, i: "42") as stub:
            ChatOpenAI(base_url=stub.base_url, api_key="x").invoke("hi")
            assert stub.requests == 1

    Answers with ``respond(request_body, choice_index) -> str``, a fixed ``text``, a ``script`` file's
    ``respond``, or (by default) the last user message.  ``process=True`` serves from a separate process
    (``respond`` must then pickle: a module-level function, ``FixedText`` or ``script``), pinned to
    ``cpus`` if given, so a benchmark's client and the server do not share a GIL or a core.
    """

    def __init__(
        self,
        respond: Responder | None = None,
        *,
        text: str | None = None,
        script: str | Path | None = None,
        models: Iterable[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        delay_ms: float = 0.0,
        fail_first: int = 0,
        fail_status: int = 500,
        record_bodies: bool = False,
        record_to: str | Path | None = None,
        continue_final_message: bool = True,
        process: bool = False,
        cpus: Iterable[int] | None = None,
        allow_remote: bool = False,
    ) -> None:
        if sum(x is not None for x in (respond, text, script)) > 1:
            raise ConfigError("give the stub one of respond=, text= or script=, not several")
        if fail_first < 0 or delay_ms < 0:
            raise ConfigError("the stub's fail_first and delay_ms must not be negative")
        check_host(host, allow_remote)
        self.config = StubConfig(
            respond=FixedText(text) if text is not None else respond, script=None if script is None else str(script),
            models=tuple(models), delay_ms=delay_ms, fail_first=fail_first, fail_status=fail_status,
            record_bodies=record_bodies, record_to=None if record_to is None else str(record_to),
            continue_final_message=continue_final_message,
        )  # fmt: skip
        self.host, self._port = host, port
        self._process_mode, self._cpus = process, None if cpus is None else sorted(cpus)
        self._app: StubApp | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._process: Any = None
        self._final: dict[str, Any] | None = None

    # -- where it listens -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``, what an OpenAI client's ``base_url`` takes."""
        return base_url(self.host, self._port)

    # -- what it saw ------------------------------------------------------------------------------
    @property
    def requests(self) -> int:
        """Completion requests received (chat and text), faulted and invalid ones included."""
        if self._app is not None:
            self._app.flush()
            return self._app.requests
        return self._seen("/stub/stats")["requests"]

    @property
    def failed(self) -> int:
        """Requests answered with an injected fault."""
        return self._app.failed if self._app is not None else self._seen("/stub/stats")["failed"]

    @property
    def peak_in_flight(self) -> int:
        """The most completion requests it was answering at once (with ``delay_ms``: what clients overlapped)."""
        return self._app.peak_in_flight if self._app is not None else self._seen("/stub/stats")["peak_in_flight"]

    @property
    def bodies(self) -> list[Any]:
        """The completion requests' bodies, in arrival order (only with ``record_bodies=True``)."""
        return list(self._app.bodies) if self._app is not None else self._seen("/stub/bodies")

    def reset(self) -> None:
        """Zero the counters and forget the recorded bodies."""
        if self._app is not None:
            if self._thread is not None and self._loop is not None:
                asyncio.run_coroutine_threadsafe(_call(self._app.reset), self._loop).result(5)
            else:
                self._app.reset()
        else:
            self._get("/stub/reset", method="POST")

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> Self:
        if self._thread is not None or self._process is not None:
            raise ConfigError("this stub server is already running")
        if self._process_mode:
            self._start_process()
        else:
            self._start_thread()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            if self._loop is not None and self._stop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)
            self._thread = None
        if self._process is not None:
            with contextlib.suppress(OSError, ValueError):  # what it saw stays readable after it stopped
                self._final = self._get("/stub/stats")
                self._final["bodies"] = self._get("/stub/bodies") if self.config.record_bodies else []
            proc, self._process = self._process, None
            proc.terminate()
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_thread(self) -> None:
        started = threading.Event()
        failure: list[BaseException] = []

        def ready(app: StubApp, port: int) -> None:
            self._app, self._port = app, port
            started.set()

        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            await serve(self.config, self.host, self._port, self._stop, ready)

        def run() -> None:
            try:
                asyncio.run(main())
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
                failure.append(exc)
            finally:
                started.set()

        self._thread = threading.Thread(target=run, name=f"lbt-stub-{self._port}", daemon=True)
        self._thread.start()
        started.wait(_START_TIMEOUT_S)
        if failure or self._app is None:
            self._thread.join(5)
            self._thread = None
            if failure:
                raise failure[0]
            raise ConfigError(f"the stub server did not start within {_START_TIMEOUT_S:.0f} s")

    def _start_process(self) -> None:
        try:
            pickle.dumps(self.config)
        except Exception:  # noqa: BLE001 - lambdas, closures, local functions
            raise ConfigError(
                "StubServer(process=True) needs a respond that pickles: a module-level function, text= or script="
            ) from None
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_process_main, args=(self.config, self.host, self._port, self._cpus, child), daemon=True,
            name="lbt-stub",
        )  # fmt: skip
        proc.start()
        child.close()
        self._process = proc
        answer: Any = None
        if parent.poll(_START_TIMEOUT_S):
            try:
                answer = parent.recv()
            except EOFError:
                answer = None
        parent.close()
        if not isinstance(answer, int):
            self.stop()
            if isinstance(answer, str):
                raise ConfigError(answer)
            raise ConfigError(f"the stub server process did not start within {_START_TIMEOUT_S:.0f} s")
        self._port = answer

    def _seen(self, path: str) -> Any:
        if self._process is None and self._final is not None:
            return self._final["bodies"] if path == "/stub/bodies" else self._final
        return self._get(path)

    def _get(self, path: str, method: str = "GET") -> Any:
        if self._process is None:
            raise ConfigError("the stub server is not running")
        conn = http.client.HTTPConnection(self.host, self._port, timeout=10)
        try:
            conn.request(method, path)
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()


async def _call(fn: Callable[[], None]) -> None:
    fn()


def _process_main(config: StubConfig, host: str, port: int, cpus: list[int] | None, conn: Any) -> None:
    """The separate process: serve until SIGTERM/SIGINT; sends the bound port (or an error line) through ``conn``."""
    if cpus is not None:
        os.sched_setaffinity(0, cpus)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        def ready(app: StubApp, bound: int) -> None:
            conn.send(bound)
            conn.close()

        await serve(config, host, port, stop, ready)

    try:
        asyncio.run(main())
    except Exception as exc:  # noqa: BLE001 - the parent raises it as one line
        message = str(exc) if isinstance(exc, ConfigError) else f"the stub server failed: {type(exc).__name__}: {exc}"
        with contextlib.suppress(OSError):  # closed once the server was ready
            conn.send(message)
            conn.close()
