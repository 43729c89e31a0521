from __future__ import annotations

import click

from lbt_agents.cli._common import build_config, print_plan, run_options
from lbt_agents.errors import LbtError


@click.command()
@click.argument("target", metavar="MODULE:BUILDER")
@run_options
def run(target, config_path, overrides, profile, task, limit, data_dir, output_dir, run_id, resume, progress, dry_run) -> None:  # type: ignore[no-untyped-def]
    """Run any teaching graph: BUILDER(cfg) returns a compiled LangGraph graph.

    The run gets checkpoints (--resume), the call cache, the classroom as the graph's
    runtime context, progress and outputs.json. Inputs: the module's inputs(cfg), else
    {"items": the task's teaching items}. Example: lbt run lbt_agents.graphs.m1_scoring:from_config
    """
    from lbt_agents.config import RunConfig
    from lbt_agents.progress import GraphProgress
    from lbt_agents.runner import resolve_builder, run_graph, write_generic_outputs

    resolve_builder(target)  # a bad target fails before anything is written
    cfg = build_config(
        RunConfig, config_path, overrides, profile=profile, task=task, limit=limit, data_dir=data_dir, output_dir=output_dir,
        run_id=run_id, resume=resume,
    )
    if dry_run:
        return print_plan(target, cfg)
    try:
        result = run_graph(target, cfg, resume=resume,
                           progress=lambda c, inputs: GraphProgress(total_tps=len(inputs.get("items") or []),
                                                                    exams_per_tp=0, enabled=progress,
                                                                    planned_requests=_planned(target, c, inputs)))
    except KeyboardInterrupt:
        raise LbtError(f"interrupted; finished work is saved: lbt run {target} --resume {cfg.run_id} "
                       f"--output-dir {cfg.output_dir}") from None
    path = write_generic_outputs(result)
    click.echo(f"outputs: {path}")
    click.echo(f"results: {result.run_dir}")


def _planned(target: str, cfg, inputs) -> int | None:  # type: ignore[no-untyped-def]
    """The graph module's planned requests (for the ETA), when it declares a plan."""
    from lbt_agents.runner import resolve_builder

    planner = getattr(resolve_builder(target)[1], "plan", None)
    return planner(cfg, inputs).requests if callable(planner) else None
