"""``lbt data``: pull and list the reference data sets (MATH-500, MATH() functional, GSM8K, BIG-bench, Liar and Logical Fallacy)."""

from __future__ import annotations

from pathlib import Path

import click

_CACHE = click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    envvar="LBT_CACHE_DIR",
    help="Cache whose data/ folder receives the files (default: $LBT_CACHE_DIR or the user cache dir of lbt-agents).",
)
_MIRROR = click.option(
    "--mirror",
    default=None,
    envvar="LBT_DATA_MIRROR",
    help="Fetch every file from this URL or folder (laid out like a data dir) instead of its source.",
)


@click.group()
def data() -> None:
    """Pull the reference data sets from their public sources into the cache, where tasks find them."""


@data.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@_CACHE
@_MIRROR
def pull(names: tuple[str, ...], cache_dir: Path | None, mirror: str | None) -> None:
    """Download and verify data set NAME (or 'all'); instant for files already pulled."""
    from lbt_agents.tasks import DATASETS, get_dataset, pull_data

    wanted = list(DATASETS) if "all" in names else [get_dataset(n).name for n in names]
    for name in dict.fromkeys(wanted):
        folder = pull_data(name, cache_dir=cache_dir, mirror=mirror, progress=lambda m: click.echo(f"  {m}", err=True))
        click.echo(f"{name}: {folder}")


@data.command("list")
@_CACHE
@_MIRROR
def list_(cache_dir: Path | None, mirror: str | None) -> None:
    """Known data sets, where they come from, and whether they are present."""
    from rich.console import Console
    from rich.table import Table

    from lbt_agents.tasks import DATASETS, data_cache_dir, dataset_present, resolve_data_dir

    in_use, cache = resolve_data_dir(None), data_cache_dir(cache_dir)
    table = Table(title=f"reference data (tasks read: {in_use}; pulls go to: {cache})")
    table.add_column("name", no_wrap=True, style="bold")
    for col in ("data", "size", "source", "license", "present"):
        table.add_column(col)
    for spec in DATASETS.values():
        places = [("cache", cache)] if in_use == cache else [("data dir", in_use), ("cache", cache)]
        where = [label for label, folder in places if dataset_present(spec, folder)]
        needs = f" (with {', '.join(spec.requires)})" if spec.requires else ""
        table.add_row(
            spec.name,
            spec.title + needs,
            f"{spec.size / 1e6:.1f} MB",
            f"{mirror} (mirror)" if mirror else spec.source,
            spec.license,
            ", ".join(where) if where else "no",
        )
    Console(width=max(Console().width, 140)).print(table)
