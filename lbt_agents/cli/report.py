from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="RUN_DIR...")
@click.option("--out", type=click.Path(path_type=Path),
              help="Folder for report.html, its PNGs and report.json [default: RUN_DIR/report for one run].")
def report(run_dirs: tuple[Path, ...], out: Path | None) -> None:
    """A self-contained HTML report of one or more runs: accuracy with 95% intervals, paired tests
    against SC, accuracy vs TR-TA pairs, LbT score separation (AUROC), students, usage, per-TP drill-down.

    Example: lbt report runs/m1-quickstart
    """
    from lbt_agents.report import write_report

    result = write_report(list(run_dirs), out)
    for line in result.notes:
        click.echo(f"note: {line}")
    click.echo(f"report: {result.path}")


def report_line(run_dir: Path) -> None:
    """What a run command prints last: the report's path (a report that fails says so; the run's results stay)."""
    from lbt_agents.report import write_report

    try:
        click.echo(f"report: {write_report([run_dir]).path}")
    except Exception as exc:  # noqa: BLE001 - the run succeeded: a report bug must not turn it into a failure
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        click.echo(f"warning: no report: {first} (the run's results are in {run_dir}; try: lbt report {run_dir})",
                   err=True)
