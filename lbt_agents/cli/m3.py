from __future__ import annotations

from typing import Any

import click

from lbt_agents.cli._common import build_config, print_plan, run_options
from lbt_agents.cli.report import report_line


def _config(config_path, overrides, profile, task, limit, data_dir, output_dir, run_id, resume):  # type: ignore[no-untyped-def]
    from lbt_agents.config import RunConfig

    return build_config(
        RunConfig, config_path, overrides, profile=profile, task=task, limit=limit, data_dir=data_dir, output_dir=output_dir,
        run_id=run_id, resume=resume,
    )


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def _round_eta(rounds: int) -> Any:
    """``eta(round) -> "ETA ..."``: the rounds left (of 0..rounds) at this session's pace of rounds."""
    import time

    from lbt_agents.progress import eta_seconds, format_eta

    started, first = time.monotonic(), []

    def eta(round_: int) -> str:
        if not first:
            first.append(round_)  # rounds before it were done by an earlier session (or this is round 0)
        return format_eta(eta_seconds(round_ + 1, rounds + 1, time.monotonic() - started, done_at_start=first[0]))

    return eta


@click.command()
@run_options
def m3(config_path, overrides, profile, task, limit, data_dir, output_dir, run_id, resume, progress, dry_run) -> None:  # type: ignore[no-untyped-def]
    """M3: refine in-context exemplars from the students' pooled failures."""
    from rich.console import Console
    from rich.markdown import Markdown

    from lbt_agents.m3 import M3_GRAPH, run_m3, summary_markdown

    cfg = _config(config_path, overrides, profile, task, limit, data_dir, output_dir, run_id, resume)
    if dry_run:
        return print_plan(M3_GRAPH, cfg)
    err = Console(stderr=True)
    total = cfg.m3.rounds
    eta = _round_eta(total)

    def on_round(rows: list[dict[str, Any]]) -> None:
        if not progress:
            return
        left = eta(rows[0]["round"]) if rows else ""
        for r in rows:
            per = ", ".join(f"{s} {_pct(v)}" for s, v in r["minibatch_accuracy"].items()) if r["round"] else "-"
            down = f" [red]down: {', '.join(r['down'])}[/red]" if r["down"] else ""
            err.print(
                f"round {r['round']}/{total} {r['lane']}: best set score {_pct(r['best_score'])}, "
                f"test {r['metric']} {_pct(r['test_value'])}, minibatch {per} (pooled {_pct(r['pooled_accuracy'])}), "
                f"new/dup/kept {r['candidates']}/{r['duplicates']}/{r['kept_previous']}{down}; {left}"
            )

    result = run_m3(cfg, resume=resume, on_round=on_round)
    Console().print(Markdown(summary_markdown(result.summary, result.rows)))
    click.echo(f"results: {result.run_dir}")
    report_line(result.run_dir)


@click.command()
@run_options
def classroom(config_path, overrides, profile, task, limit, data_dir, output_dir, run_id, resume, progress, dry_run) -> None:  # type: ignore[no-untyped-def]
    """Classroom simulation: M3 over the roster graph (several teachers, peer teaching), table and plot per round."""
    from rich.console import Console
    from rich.table import Table

    from lbt_agents.m3 import M3_GRAPH, rows_table, run_classroom, summary_markdown
    from lbt_agents.classroom import describe, who_teaches_whom

    cfg = _config(config_path, overrides, profile, task, limit, data_dir, output_dir, run_id, resume)
    if dry_run:
        return print_plan(M3_GRAPH, cfg)
    out = Console()
    if not out.is_terminal:
        out = Console(width=200)  # logs and pipes: whole tables, not 80 columns
    if progress:
        for line in describe(who_teaches_whom(cfg.classroom)):
            out.print(f"teaches: {line}", highlight=False)

    eta = _round_eta(cfg.m3.rounds)

    def on_round(rows: list[dict[str, Any]]) -> None:
        if not progress or not rows:
            return
        cells = rows_table(rows)
        table = Table(title=f"round {rows[0]['round']}/{cfg.m3.rounds}, {eta(rows[0]['round'])}")
        for name in cells[0]:
            table.add_column(name)
        for row in cells[1:]:
            table.add_row(*row)
        out.print(table)

    result = run_classroom(cfg, resume=resume, on_round=on_round)
    if not progress:
        click.echo(summary_markdown(result.summary, result.rows))
    click.echo(f"plot: {result.run_dir / 'metric_by_round.png'}")
    click.echo(f"results: {result.run_dir}")
    report_line(result.run_dir)
