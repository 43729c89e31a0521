"""``lbt serve``: run the embedded classroom until Ctrl-C (or stop what a previous ``lbt serve`` started)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import click


@click.command()
@click.option("--model", "models", multiple=True, help="Registry name (repeatable; default: the embedded classroom).")
@click.option("--port", type=int, default=None, help="Port of the first server (the next ones use port+1, ...).")
@click.option("--kv-cache-gib", type=float, default=2.0, show_default=True, help="KV cache per server (vLLM-CPU).")
@click.option(
    "--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None, envvar="LBT_CACHE_DIR",
    help="Model cache (default: $LBT_CACHE_DIR or the user cache dir of lbt-agents).",
)  # fmt: skip
@click.option(
    "--block-size", type=int, default=None, envvar="LBT_SERVE_BLOCK_SIZE",
    help="KV cache block in tokens (default: vLLM's, 128 on CPU); 32 lets the prefix cache serve more of each exam.",
)  # fmt: skip
@click.option("--stop", is_flag=True, help="Stop the servers a running `lbt serve` started (nothing else).")
def serve(
    models: tuple[str, ...], port: int | None, kv_cache_gib: float, cache_dir: Path | None, block_size: int | None, stop: bool
) -> None:
    """Pull (if needed) and serve models on 127.0.0.1 with vLLM until Ctrl-C."""
    from lbt_agents.serving import (
        EMBEDDED_CLASSROOM, Classroom, VllmServer, default_cache_dir, get_model, pull_model, pulled_model_dir,
    )  # fmt: skip
    from lbt_agents.serving import _state
    from lbt_agents.serving.server import cpu_core_sets
    from lbt_agents.serving._guards import check_port_free

    state = _state.state_path(default_cache_dir(cache_dir))
    if stop:
        n = _state.stop_recorded(state, say=click.echo)
        click.echo(f"stopped {n} server(s)")
        return
    names = list(dict.fromkeys(models or EMBEDDED_CLASSROOM))
    for i, name in enumerate(names):
        get_model(name)
        if port is not None:
            check_port_free(port + i)
    for name in names:
        if pulled_model_dir(name, cache_dir=cache_dir) is None:
            pull_model(name, cache_dir=cache_dir, progress=lambda m: click.echo(m, err=True))
    cores = cpu_core_sets(len(names))
    servers = [
        VllmServer(
            name, port=None if port is None else port + i, kv_cache_gib=kv_cache_gib, cache_dir=cache_dir,
            cpu_cores=cores[i], block_size=block_size,
        )  # fmt: skip
        for i, name in enumerate(names)
    ]
    classroom = Classroom(servers)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` stops the classroom like Ctrl-C does
    click.echo(f"starting {', '.join(names)} (about 2 minutes on a CPU) ...", err=True)
    started: set[int] = set()
    try:
        classroom.start()
        entries = [
            _state.Started(s.name, e.pid, e.port, tuple(s.cmdline), str(e.log_path), os.getpid())
            for s in servers
            if (e := s.endpoint) is not None
        ]
        started = {e.pid for e in entries}
        _state.record(state, entries)
        for s in servers:
            e = s.endpoint
            assert e is not None
            click.echo(f"{e.model}  {e.base_url}  log: {e.log_path}")
        click.echo("serving; press Ctrl-C to stop", err=True)
        while not (ended := [s for s in servers if s.returncode is not None]):
            time.sleep(1.0)
        for s in ended:
            click.echo(f"the server for {s.name} exited (code {s.returncode}); stopping the others", err=True)
    except KeyboardInterrupt:
        click.echo("stopping ...", err=True)
    finally:
        classroom.stop()
        if started:
            _state.forget(state, started)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
