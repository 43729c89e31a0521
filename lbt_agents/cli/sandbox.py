"""``lbt sandbox run FILE``: run a program under exactly the examiner's sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import click

from lbt_agents.errors import ConfigError


@click.group()
def sandbox() -> None:
    """Run untrusted Python in the sandbox the code examiner uses."""


def _read(path: Path, what: str) -> str:
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}") from None


def _tests(path: Path) -> tuple[list[str] | str, str, str]:
    """A .py test script (one test), or JSON: a list of tests or {tests, prelude, setup}."""
    text = _read(path, "tests file")
    if path.suffix != ".json":
        return text, "", ""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"tests file {path} is not valid JSON: {exc}") from None
    if isinstance(data, dict):
        tests, prelude, setup = data.get("tests"), data.get("prelude", ""), data.get("setup", "")
    else:
        tests, prelude, setup = data, "", ""
    if not isinstance(tests, list) or not all(isinstance(t, str) for t in tests):
        raise ConfigError(f"tests file {path}: 'tests' must be a list of Python snippets (strings)")
    return tests, str(prelude), str(setup)


@sandbox.command("run")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--tests", "tests_path", type=click.Path(path_type=Path),
              help="Tests: a .py script (one test) or JSON: a list of snippets or {tests, prelude, setup}.")  # fmt: skip
@click.option("--stdin", "stdin_path", type=click.Path(path_type=Path), help="File fed to the program's stdin.")
@click.option("--wall-s", type=float, default=None, help="Wall-time limit, seconds (default: the examiner's).")
@click.option("--cpu-s", type=float, default=None, help="CPU-time limit, seconds (default: the wall-time limit).")
@click.option("--memory-mb", type=int, default=None, help="Memory limit, MiB (default: the examiner's).")
@click.option("--max-processes", type=int, default=None, help="Most processes/threads at once.")
@click.option("--allow-unsandboxed", is_flag=True,
              help="When bubblewrap is missing or fails, run UNCONFINED (no network or filesystem isolation); warns.")  # fmt: skip
@click.option("--require-isolation", is_flag=True,
              help="Refuse to run unconfined even when LBT_SANDBOX_ISOLATION=bare.")  # fmt: skip
def run(
    file: Path,
    tests_path: Path | None,
    stdin_path: Path | None,
    wall_s: float | None,
    cpu_s: float | None,
    memory_mb: int | None,
    max_processes: int | None,
    allow_unsandboxed: bool,
    require_isolation: bool,
) -> None:
    """Run FILE in the sandbox and print a JSON verdict; exit 0 when it ran ok (and all tests pass).

    Without a working bubblewrap it refuses (one error line) unless --allow-unsandboxed.
    """
    import dataclasses

    from lbt_agents.grading.code import CodeGrader
    from lbt_agents.sandbox import (
        capabilities,
        resolve_isolation,
        run_python,
        run_tests,
    )

    if allow_unsandboxed and require_isolation:
        raise ConfigError("--allow-unsandboxed and --require-isolation contradict each other; give one")
    code = _read(file, "program file")
    fallback = allow_unsandboxed and capabilities().bwrap is None
    isolation = resolve_isolation("bare" if fallback else "auto", require_isolation=require_isolation)
    grader = CodeGrader()
    changes = {"wall_s": wall_s, "cpu_s": cpu_s, "memory_mb": memory_mb, "max_processes": max_processes}
    limits = dataclasses.replace(grader.limits, **{k: v for k, v in changes.items() if v is not None})
    if limits.wall_s <= 0 or limits.memory_mb <= 0 or limits.max_processes <= 0:
        raise ConfigError("--wall-s, --memory-mb and --max-processes must be positive")
    if tests_path is None:
        stdin = _read(stdin_path, "stdin file") if stdin_path else ""
        result = run_python(code, stdin=stdin, limits=limits, isolation=isolation)
        verdict: dict[str, object] = result.to_json()
        ok = result.ok
    else:
        tests, prelude, setup = _tests(tests_path)
        report = run_tests(code, tests, prelude=prelude, setup=setup, limits=limits,
                           per_test_s=grader.per_test_s, isolation=isolation)  # fmt: skip
        verdict = {**report.run.to_json(), "tests": report.to_json()}
        ok = report.run.ok and report.all_passed
    click.echo(json.dumps(verdict, indent=2))
    raise SystemExit(0 if ok else 1)  # click.Context.exit would lose the code in non-standalone mode
