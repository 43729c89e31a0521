"""``lbt stub serve``: a stub OpenAI-compatible server for tests and benchmarks, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from lbt_agents.errors import ConfigError


@click.group()
def stub() -> None:
    """A stub OpenAI-compatible server (instant scripted answers) for tests and benchmarks."""


@stub.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback unless --allow-remote).")
@click.option("--port", type=int, default=8000, show_default=True, help="Port (0 picks a free one).")
@click.option("--model", "models", multiple=True, help="A model name it serves (repeatable; default: any name).")
@click.option("--echo", "echo_flag", is_flag=True, help="Answer with the last user message (the default).")
@click.option("--text", help="Answer every request with this text.")
@click.option(
    "--script", type=click.Path(dir_okay=False, path_type=Path),
    help="A Python file defining respond(request_body, choice_index) -> str.",
)  # fmt: skip
@click.option("--delay-ms", type=float, default=0.0, show_default=True, help="Wait this long before each answer.")
@click.option("--fail-first", type=int, default=0, show_default=True, help="Answer the first N requests with 500.")
@click.option("--record-bodies", is_flag=True, help="Keep request bodies (GET /stub/bodies).")
@click.option("--record-to", type=click.Path(dir_okay=False, path_type=Path),
              help="Append each request's body to this JSON-lines file (nothing kept in memory).")
@click.option("--refuse-prefill", is_flag=True,
              help="Refuse (400) requests that continue the final assistant message (continue_final_message).")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --host.")
def serve(
    host: str, port: int, models: tuple[str, ...], echo_flag: bool, text: str | None, script: Path | None,
    delay_ms: float, fail_first: int, record_bodies: bool, record_to: Path | None, refuse_prefill: bool, allow_remote: bool,
) -> None:  # fmt: skip
    """Serve /v1/chat/completions, /v1/completions and /v1/models; prints the base URL."""
    from lbt_agents.stub import FixedText, StubConfig, load_script
    from lbt_agents.stub import serve as serve_stub
    from lbt_agents.stub._server import base_url, check_host

    if echo_flag + (text is not None) + (script is not None) > 1:
        raise ConfigError("give one of --echo, --text and --script")
    if fail_first < 0 or delay_ms < 0:
        raise ConfigError("--fail-first and --delay-ms must not be negative")
    check_host(host, allow_remote)
    respond = FixedText(text) if text is not None else load_script(script) if script is not None else None
    config = StubConfig(
        respond=respond, models=models, delay_ms=delay_ms, fail_first=fail_first, record_bodies=record_bodies,
        record_to=None if record_to is None else str(record_to), continue_final_message=not refuse_prefill,
    )

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def ready(app: object, bound: int) -> None:
            click.echo(base_url(host, bound))
            click.echo("serving; press Ctrl-C to stop", err=True)

        app = await serve_stub(config, host, port, stop, ready)
        return app.requests

    requests = asyncio.run(main())
    click.echo(f"stopped after {requests} completion request(s)", err=True)
