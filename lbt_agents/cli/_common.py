"""Options shared by the run commands (m1, m2, m3, classroom)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from lbt_agents.config import check_run_id, load_config
from lbt_agents.errors import ConfigError


def run_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--config, --set, --task, --limit, --output-dir, --run-id, --resume, --no-progress, --dry-run."""
    options = [
        click.option("--config", "config_path", type=click.Path(path_type=Path), help="YAML run config."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override a config field, e.g. --set m1.pairs_per_tp=4 (repeatable)."),
        click.option("--profile", help="Config profile: default or paper (profile)."),
        click.option("--task", help="Task name (task.name)."),
        click.option("--limit", type=int, help="Use at most this many teaching problems (task.limit)."),
        click.option("--data-dir", type=click.Path(path_type=Path), help="Data folder (task.data_dir)."),
        click.option("--output-dir", type=click.Path(path_type=Path), help="Where runs are written."),
        click.option("--run-id", help="Name of this run (default: a timestamp)."),
        click.option("--resume", "resume", metavar="RUN_ID", help="Continue a stopped run."),
        click.option("--progress/--no-progress", default=True, help="Show a progress display."),
        click.option("--dry-run", is_flag=True,
                     help="Print the plan (requests and estimated tokens per agent and phase) and stop: no model "
                          "call, no server started, nothing written."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def build_config(
    model: type,
    config_path: Path | None,
    overrides: tuple[str, ...],
    *,
    profile: str | None = None,
    task: str | None = None,
    limit: int | None = None,
    data_dir: Path | None = None,
    output_dir: Path | None = None,
    run_id: str | None = None,
    resume: str | None = None,
) -> Any:
    """The run config: YAML file, then flags, then --set overrides.  With
    ``resume``, the stopped run's saved config with the flags and --set overrides that
    do not change its work (so a run can continue against another server:
    --set classroom.teacher.base_url=...); the others are refused with one line."""
    if run_id is not None:
        check_run_id(run_id)
    flags = []
    if profile:
        flags.append(f"profile={profile}")
    if task:
        flags.append(f"task.name={task}")
    if limit is not None:
        flags.append(f"task.limit={limit}")
    if data_dir is not None:
        flags.append(f"task.data_dir={data_dir}")
    if resume:
        from lbt_agents.runs import resume_config

        check_run_id(resume)
        if run_id is not None and run_id != resume:
            raise ConfigError(f"--run-id {run_id} and --resume {resume} name different runs; give one of them")
        if output_dir is None:
            output_dir = load_config(config_path, list(overrides), model=model).output_dir if config_path else Path("runs")
        # the flags are overrides too: a resumed run refuses the ones that change its work
        return resume_config(output_dir, resume, [*flags, *overrides], model=model)
    if output_dir is not None:
        flags.append(f"output_dir={output_dir}")
    if run_id:
        flags.append(f"run_id={run_id}")
    cfg = load_config(config_path, [*flags, *overrides], model=model)
    if getattr(cfg, "run_id", "") is None:
        from lbt_agents.runs import new_run_id

        cfg = cfg.model_copy(update={"run_id": new_run_id()})
    return cfg


def print_plan(target: str, cfg: Any) -> None:
    """``--dry-run``: the plan of running graph ``target`` over ``cfg`` (and what its budget allows), on stdout."""
    from rich.console import Console
    from rich.markdown import Markdown

    from lbt_agents.budget import Spent
    from lbt_agents.runner import plan_graph
    from lbt_agents.sandbox import set_default_isolation

    set_default_isolation(cfg.sandbox.isolation)  # as a run does: a code task checks its sandbox when it loads
    plan = plan_graph(target, cfg)
    out = Console() if Console().is_terminal else Console(width=200)
    if plan is None:
        click.echo(f"dry run: graph {target} declares no plan (a plan(cfg, inputs) function in its module); "
                   "no model was called")
        return
    out.print(Markdown(plan.table()))
    spent = Spent.load_all(cfg.run_dir()) if cfg.run_id else Spent()
    if spent.requests:
        click.echo(f"already spent by run {cfg.run_id}: {spent.requests} requests, {spent.tokens} tokens "
                   "(finished work is not asked again)")
    caps = [f"{name} {value}" for name, value in (("max_requests", cfg.budget.max_requests),
                                                  ("max_tokens", cfg.budget.max_tokens)) if value is not None]
    if caps:
        fits = ((cfg.budget.max_requests is None or spent.requests + plan.requests <= cfg.budget.max_requests)
                and (cfg.budget.max_tokens is None or spent.tokens + plan.tokens <= cfg.budget.max_tokens))
        click.echo(f"budget: {', '.join(caps)}: " + ("the plan fits" if fits else
                                                      "the run stops at the budget before the plan is done"))
    click.echo("dry run: no model was called and no server started")
