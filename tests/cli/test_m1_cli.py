"""`lbt m1` bad input: one clear line and a non-zero exit, before any work starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def lbt(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lbt_agents", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "nope.yaml"], "error: config file not found: nope.yaml"),
        (["--task", "no_such_task"], "error: unknown task 'no_such_task'; known tasks:"),
        (["--task", "gsm8k", "--data-dir", "/nonexistent"], "error: "),
        (["--set", "m1.pairs_per_tp=0"], "error: config: m1.pairs_per_tp:"),
        (["--set", "bogus"], "error: override 'bogus' is not KEY=VALUE"),
        (["--resume", "missing-run"], "error: no run 'missing-run' to resume"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    out = lbt("m1", *args, "--output-dir", str(tmp_path / "runs"), "--no-progress", cwd=tmp_path)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(message), lines[0]
    assert "Traceback" not in out.stderr


def test_missing_data_path_names_the_path(tmp_path: Path) -> None:
    out = lbt("m1", "--task", "gsm8k", "--data-dir", str(tmp_path / "nowhere"), "--output-dir", str(tmp_path),
              cwd=tmp_path)
    assert out.returncode == 2
    assert str(tmp_path / "nowhere") in out.stderr


def test_grade_math_exit_codes(tmp_path: Path) -> None:
    assert lbt("grade", "math", "--gold", r"\frac{1}{2}", "--pred", "0.5", cwd=tmp_path).returncode == 0
    assert lbt("grade", "math", "--gold", r"\frac{1}{2}", "--pred", "0.4", cwd=tmp_path).returncode == 1
