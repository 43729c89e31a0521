from __future__ import annotations

import click

from lbt_agents.cli._common import build_config, print_plan, run_options
from lbt_agents.cli.report import report_line
from lbt_agents.errors import LbtError


@click.command()
@run_options
@click.option("--executor", type=click.Choice(["local", "ray"]),
              help="Where TP jobs run: this process, or a Ray cluster (executor.kind).")
@click.option("--address", help="Ray cluster address: host:port, ray://host:port or auto (executor.address).")
def m1(config_path, overrides, profile, task, limit, data_dir, output_dir, run_id, resume, progress, dry_run,  # type: ignore[no-untyped-def]
       executor, address) -> None:
    """M1: score TR-TA pairs by their students' exams and select answers."""
    from rich.console import Console
    from rich.markdown import Markdown

    from lbt_agents.config import RunConfig
    from lbt_agents.m1 import M1_GRAPH, run_m1, summary_table

    flags = [*([f"executor.kind={executor}"] if executor else []), *([f"executor.address={address}"] if address else [])]
    cfg = build_config(
        RunConfig, config_path, (*flags, *overrides), profile=profile, task=task, limit=limit, data_dir=data_dir,
        output_dir=output_dir, run_id=run_id, resume=resume,
    )
    if dry_run:
        return print_plan(M1_GRAPH, cfg)
    try:
        result = run_m1(cfg, resume=resume, progress=progress)
    except KeyboardInterrupt:
        raise LbtError(
            f"interrupted; finished work is saved: lbt m1 --resume {cfg.run_id} --output-dir {cfg.output_dir}"
        ) from None
    Console().print(Markdown(summary_table(result.summary)))
    click.echo(f"results: {result.run_dir}")
    report_line(result.run_dir)
