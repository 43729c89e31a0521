"""The ``lbt`` command.  Subcommands load lazily so ``lbt --help`` stays fast.

Every option can also be set by an environment variable: ``LBT_<COMMAND>_<OPTION>``
(for example ``LBT_M1_CONFIG`` or ``LBT_SERVE_PORT``).
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from lbt_agents.errors import LbtError

# name -> "module:attribute"; each module owns one command or group.
_COMMANDS = {
    "models": "lbt_agents.cli.models:models",
    "serve": "lbt_agents.cli.serve:serve",
    "run": "lbt_agents.cli.run:run",
    "m1": "lbt_agents.cli.m1:m1",
    "grade": "lbt_agents.cli.grade:grade",
    "tasks": "lbt_agents.cli.grade:tasks",
    "sandbox": "lbt_agents.cli.sandbox:sandbox",
    "m2": "lbt_agents.cli.m2:m2",
    "m3": "lbt_agents.cli.m3:m3",
    "classroom": "lbt_agents.cli.m3:classroom",
    "data": "lbt_agents.cli.data:data",
    "stub": "lbt_agents.cli.stub:stub",
    "report": "lbt_agents.cli.report:report",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = _COMMANDS.get(name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=_LazyGroup, context_settings={"auto_envvar_prefix": "LBT", "help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lbt-agents")
def cli() -> None:
    """lbt: LLM agents that learn by teaching."""


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one line and a non-zero exit."""
    try:
        cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except LbtError as exc:
        if os.environ.get("LBT_DEBUG"):
            raise
        click.echo(f"{exc.label}: {exc}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - last resort: one line, traceback on demand
        if os.environ.get("LBT_DEBUG"):
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        click.echo(f"error: {type(exc).__name__}: {first} (set LBT_DEBUG=1 for the traceback)", err=True)
        sys.exit(1)
