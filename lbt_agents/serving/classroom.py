"""Several servers at once: the embedded classroom."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lbt_agents.errors import ServeError
from lbt_agents.serving._guards import check_memory
from lbt_agents.serving.registry import MODELS
from lbt_agents.serving.server import Endpoint, VllmServer, cpu_core_sets, is_cpu_build


class Classroom:
    """Running servers keyed by served model name."""

    def __init__(self, servers: Sequence[VllmServer]) -> None:
        self._servers = {s.name: s for s in servers}

    @property
    def endpoints(self) -> dict[str, Endpoint]:
        return {name: s.endpoint for name, s in self._servers.items() if s.endpoint is not None}

    def base_url(self, model: str) -> str:
        """``http://127.0.0.1:PORT/v1`` of ``model``."""
        endpoint = self.server(model).endpoint
        if endpoint is None:
            raise ServeError(f"the server for {model} is not running")
        return endpoint.base_url

    def server(self, model: str) -> VllmServer:
        try:
            return self._servers[str(model)]
        except KeyError:
            raise ServeError(f"{model!r} is not in this classroom; it serves {', '.join(self._servers)}") from None

    def start(self) -> Classroom:
        """Pull what is missing, launch every server, then wait for all (start-ups overlap)."""
        servers = list(self._servers.values())
        for s in servers:
            s.prepare()
        check_memory(sum(s.required_memory() for s in servers), f"serve {', '.join(self._servers)}")
        try:
            for s in servers:
                s.launch(check_mem=False)
            for s in servers:
                s.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every server (and its process tree)."""
        for s in self._servers.values():
            s.stop()

    def __repr__(self) -> str:
        return f"Classroom({', '.join(f'{n}={e.base_url}' for n, e in self.endpoints.items())})"


@contextmanager
def serve_classroom(models: Sequence[str | Path], **server_kwargs: Any) -> Iterator[Classroom]:
    """Serve ``models`` (registry names or HF folders) together; always stops them on exit.

    ``server_kwargs`` go to every :class:`VllmServer` (``port`` is not allowed here). A folder is served
    under its directory name unless it is listed as ``(path, served_name)`` elsewhere: serve folders
    with explicit :class:`VllmServer` objects when the name matters.
    """
    if {"port", "served_name", "cpu_cores"} & server_kwargs.keys():
        raise ServeError("serve_classroom picks ports, names and cores itself; use VllmServer to fix them")
    if not models:
        raise ServeError("serve_classroom needs at least one model")
    extra = list(server_kwargs.pop("extra_args", ()))
    if not is_cpu_build() and len(models) > 1 and not any(a.startswith("--gpu-memory-utilization") for a in extra):
        extra += ["--gpu-memory-utilization", f"{0.85 / len(models):.3f}"]
    cores = cpu_core_sets(len(models))  # engines that share cores slow each other down many-fold
    servers = [
        VllmServer(m, served_name=None if str(m) in MODELS else Path(m).name, extra_args=extra, cpu_cores=c, **server_kwargs)
        for m, c in zip(models, cores, strict=True)
    ]
    if len({s.name for s in servers}) != len(servers):
        raise ServeError(f"duplicate models in the classroom: {[s.name for s in servers]}")
    classroom = Classroom(servers)
    try:
        yield classroom.start()
    finally:
        classroom.stop()
