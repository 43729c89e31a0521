"""Running ``lbt`` in a subprocess, and a saved run to resume."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lbt_agents.config import RunConfig
from lbt_agents.runs import prepare_run

ROOT = Path(__file__).resolve().parents[2]
RUN_COMMANDS = [["m1"], ["m3"], ["classroom"], ["m2", "prefs"], ["run", "lbt_agents.graphs.m1_scoring:from_config"]]


def lbt_env(cwd: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{cwd}{os.pathsep}{ROOT}"}


def lbt(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lbt_agents", *args], capture_output=True, text=True, cwd=cwd,
                          env=lbt_env(cwd), timeout=timeout)


def one_error_line(out: subprocess.CompletedProcess[str]) -> str:
    """The single ``error:`` line a refused command prints (asserts it is one line and no traceback)."""
    assert out.returncode != 0, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def saved_run(output_dir: Path, run_id: str = "r1", **fields: object) -> Path:
    """A stopped run's folder (its config.yaml), as ``prepare_run`` leaves it; returns config.yaml.
    Its endpoints are dead, so a command that wrongly goes ahead fails fast instead of starting servers."""
    dead = "http://127.0.0.1:9/v1"  # the discard port: nothing listens, so nothing can start by mistake
    data = {"run_id": run_id, "output_dir": str(output_dir), "m1": {"pairs_per_tp": 64},
            "task": {"name": "gsm8k_functional", "limit": 6},
            "classroom": {"teacher": {"name": "teacher", "role": "teacher", "base_url": dead},
                          "students": [{"name": "s", "base_url": dead}]}}
    cfg = RunConfig.model_validate({**data, **fields})
    _, run = prepare_run(cfg)
    return run.config


def lbt_here(*args: str) -> tuple[int, str]:
    """``lbt ARGS`` in this process (fast: for commands refused before any work); (exit code, stderr).
    Use under pytest's ``capsys``."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from lbt_agents.cli import main

    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, err.getvalue()


def one_line(code: int, stderr: str) -> str:
    """The single ``error:`` line of a refused in-process command."""
    assert code != 0, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]
