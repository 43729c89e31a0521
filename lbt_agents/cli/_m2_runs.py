"""``lbt m2 prefs`` and ``lbt m2 eval``: the run commands of M2."""

from __future__ import annotations

from pathlib import Path

import click

from lbt_agents.cli._common import build_config, print_plan, run_options
from lbt_agents.cli.report import report_line


@click.command("prefs")
@run_options
def prefs(config_path, overrides, profile, task, limit, data_dir, output_dir, run_id, resume, progress, dry_run) -> None:  # type: ignore[no-untyped-def]
    """Preference pairs from LbT scores (M2) and from correctness alone (baseline)."""
    from lbt_agents.config import RunConfig
    from lbt_agents.m2 import M2_GRAPH, run_m2_prefs

    cfg = build_config(
        RunConfig, config_path, overrides, profile=profile, task=task, limit=limit, data_dir=data_dir, output_dir=output_dir,
        run_id=run_id, resume=resume,
    )
    if dry_run:
        return print_plan(M2_GRAPH, cfg)
    result = run_m2_prefs(cfg, resume=resume, progress=progress)
    for mode, n in result.summary["pairs"].items():
        click.echo(f"{mode}: {n} pairs from {result.summary['tps_with_pairs'][mode]} of {result.summary['tps']} TPs")
    for mode, path in result.paths.items():
        click.echo(f"{mode} pairs: {path}")
    report_line(result.run_dir)


@click.command("eval")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="YAML run config (task, teacher sampling).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config field (repeatable).")
@click.option("--profile", help="Config profile: default or paper (profile).")
@click.option("--model", "models", multiple=True, required=True, metavar="LABEL=NAME_OR_DIR",
              help="A model to evaluate: a registry name or an HF folder (repeatable), e.g. m2=runs/dpo/merged.")
@click.option("--out", type=click.Path(path_type=Path), help="Write the table (.md) and numbers (.json) here.")
def evaluate(config_path, overrides, profile, models, out) -> None:  # type: ignore[no-untyped-def]
    """Serve each model and compare greedy accuracy on held-out problems (the paper's Tab. 4)."""
    import json

    from lbt_agents.config import RunConfig
    from lbt_agents.errors import ConfigError
    from lbt_agents.m2 import eval_table
    from lbt_agents.m2 import evaluate as run_eval
    from lbt_agents.runs import write_atomic

    cfg = build_config(RunConfig, config_path, overrides, profile=profile)
    specs = {}
    for text in models:
        label, sep, model = text.partition("=")
        if not sep or not label or not model:
            raise ConfigError(f"--model {text!r} is not LABEL=NAME_OR_DIR")
        specs[label] = Path(model) if Path(model).is_dir() else model
    result = run_eval(cfg, specs, log_dir=out / "logs" if out else None)
    table = eval_table(result)
    click.echo(table)
    if out:
        write_atomic(out / "m2_eval.md", table)
        write_atomic(out / "m2_eval.json", json.dumps(result, indent=2))
        report_line(out)
