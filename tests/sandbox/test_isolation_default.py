"""Model-written code runs only isolated: without a working bubblewrap every entry point refuses
with one line naming the fix; unconfined needs an explicit choice, warns once and is recorded."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import lbt_agents.sandbox._isolation as iso
from lbt_agents.sandbox import (
    IsolationError,
    capabilities,
    isolation_used,
    resolve_isolation,
    run_python,
    run_tests,
    set_default_isolation,
)

LBT = [sys.executable, "-c", "import sys; from lbt_agents.cli import main; sys.exit(main(sys.argv[1:]))"]


@pytest.fixture
def clean_choice(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No env var, no process default, a fresh probe and warning state; restored afterwards."""
    monkeypatch.delenv(iso.ENV_VAR, raising=False)
    monkeypatch.setattr(iso, "_warned", False)
    monkeypatch.setattr(iso, "_used", set())
    set_default_isolation(None)
    capabilities.cache_clear()
    yield
    set_default_isolation(None)
    capabilities.cache_clear()  # the next caller probes the real PATH again


@pytest.fixture
def no_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_choice: None) -> Path:
    """A PATH without bwrap (an empty folder)."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


@pytest.fixture
def broken_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_choice: None) -> Path:
    """A PATH whose bwrap fails its probe the way a kernel without user namespaces makes it fail."""
    folder = tmp_path / "broken-bin"
    folder.mkdir()
    fake = folder / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))
    return fake


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_missing_bwrap_refuses_and_names_the_fix(no_bwrap: Path, tmp_path: Path) -> None:
    witness = tmp_path / "ran"
    with pytest.raises(IsolationError) as exc:
        run_python(f"open({str(witness)!r}, 'w').write('x')")
    text = _one_line(exc)
    assert "needs bubblewrap" in text and "apt-get install bubblewrap" in text
    assert "--allow-unsandboxed" in text and "sandbox.isolation: bare" in text
    assert not witness.exists()  # the program never ran, not even unconfined
    with pytest.raises(IsolationError):
        run_tests("x = 1", ["assert x == 1"])
    assert isolation_used() == ()


def test_bwrap_failing_its_probe_refuses_too(broken_bwrap: Path) -> None:
    assert capabilities().bwrap is None and capabilities().installed == str(broken_bwrap)
    with pytest.raises(IsolationError) as exc:
        run_python("print(1)")
    text = _one_line(exc)
    assert str(broken_bwrap) in text and "fails its probe" in text and "uid map: Permission denied" in text
    with pytest.raises(IsolationError):
        run_python("print(1)", isolation="bwrap")


def test_bare_is_an_explicit_choice_that_warns_once_and_is_recorded(
    no_bwrap: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = run_python("print(6 * 7)", isolation="bare")
    second = run_python("print(1)", isolation="bare")
    assert first.stdout == "42\n" and first.isolation == second.isolation == "bare"
    assert first.to_json()["isolation"] == "bare"
    err = capsys.readouterr().err
    assert err.count("warning: model-written code runs UNCONFINED") == 1
    assert isolation_used() == ("bare",)


def test_env_var_and_process_default_choose_bare(no_bwrap: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(iso.ENV_VAR, "bare")
    assert resolve_isolation() == "bare" and run_python("print(1)").isolation == "bare"
    with pytest.raises(IsolationError, match="isolation is required"):
        run_python("print(1)", require_isolation=True)
    monkeypatch.setenv(iso.ENV_VAR, "none")
    with pytest.raises(IsolationError, match="LBT_SANDBOX_ISOLATION") as exc:
        resolve_isolation()
    _one_line(exc)
    monkeypatch.delenv(iso.ENV_VAR)
    with pytest.raises(IsolationError):
        resolve_isolation()
    set_default_isolation("bare")  # what a run config's sandbox.isolation: bare sets
    assert resolve_isolation() == "bare" and resolve_isolation("auto") == "bare"
    set_default_isolation(None)
    with pytest.raises(IsolationError):
        resolve_isolation()
    with pytest.raises(IsolationError, match="not one of"):
        set_default_isolation("nope")  # type: ignore[arg-type]


@pytest.mark.skipif(capabilities().bwrap is None, reason=f"needs a working bubblewrap: {capabilities().detail}")
def test_default_is_bwrap_when_it_works(clean_choice: None) -> None:
    r = run_python("print(1)")
    assert r.isolation == "bwrap" and isolation_used() == ("bwrap",)


def _lbt(args: list[str], path: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != iso.ENV_VAR}
    return subprocess.run(
        [*LBT, *args], capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path, env={**base, "PATH": path, **env}
    )


def test_lbt_sandbox_run_refuses_without_bwrap(no_bwrap: Path, tmp_path: Path) -> None:
    witness = tmp_path / "ran"
    program = tmp_path / "p.py"
    program.write_text(f"open({str(witness)!r}, 'w').write('x')\nprint('hi')\n")
    done = _lbt(["sandbox", "run", str(program)], str(no_bwrap), tmp_path)
    assert done.returncode != 0 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the code sandbox needs bubblewrap")
    assert not witness.exists()

    allowed = _lbt(["sandbox", "run", "--allow-unsandboxed", str(program)], str(no_bwrap), tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    assert '"isolation": "bare"' in allowed.stdout and witness.exists()
    assert "warning: model-written code runs UNCONFINED" in allowed.stderr

    both = _lbt(["sandbox", "run", "--allow-unsandboxed", "--require-isolation", str(program)], str(no_bwrap), tmp_path)
    assert both.returncode != 0 and both.stderr.startswith("error: ")


def test_lbt_sandbox_run_refuses_a_broken_bwrap(broken_bwrap: Path, tmp_path: Path) -> None:
    program = tmp_path / "p.py"
    program.write_text("print('hi')\n")
    done = _lbt(["sandbox", "run", str(program)], str(broken_bwrap.parent), tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1 and "fails its probe" in lines[0]
    bare = _lbt(["sandbox", "run", str(program)], str(broken_bwrap.parent), tmp_path, LBT_SANDBOX_ISOLATION="bare")
    assert bare.returncode == 0 and '"isolation": "bare"' in bare.stdout
