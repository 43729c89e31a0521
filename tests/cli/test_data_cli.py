"""`lbt data pull` / `lbt data list` on fixture data sets served from a local folder (no network)."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lbt_agents.cli import main
from lbt_agents.tasks import DATASETS, DataFile, DataSet


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = 0
    try:
        main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding the one file of a registered fixture set ``fixture``; a private cache; no data dir."""
    data = b"row 1\nrow 2\n"
    (tmp_path / "mirror" / "fix").mkdir(parents=True)
    (tmp_path / "mirror" / "fix" / "rows.txt").write_bytes(data)
    spec = DataSet("fixture", "fixture rows", "a test", "MIT",
                   (DataFile("fix/rows.txt", "http://upstream.invalid/rows.txt", hashlib.sha256(data).hexdigest(),
                             len(data)),))
    monkeypatch.setitem(DATASETS, "fixture", spec)
    monkeypatch.setenv("LBT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("LBT_DATA_DIR", raising=False)
    monkeypatch.delenv("LBT_DATA_MIRROR", raising=False)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")  # no ../shared beside it
    return tmp_path / "mirror"


def _row(table: str, name: str) -> str:
    return next(line for line in table.splitlines() if f" {name} " in line)


def test_pull_then_list(capsys, mirror: Path, tmp_path: Path) -> None:
    code, out, _ = _run(capsys, "data", "list")
    assert code == 0 and str(tmp_path / "cache" / "data") in out
    assert _row(out, "fixture").rstrip(" │").endswith("no")
    for name in ("math500", "math_functional", "gsm8k", "bigbench"):
        assert _row(out, name)

    code, out, err = _run(capsys, "data", "pull", "fixture", "--mirror", str(mirror))
    assert code == 0, err
    assert out.strip() == f"fixture: {tmp_path / 'cache' / 'data'}"
    assert "fix/rows.txt" in err and "sha256 ok" in err
    assert (tmp_path / "cache" / "data" / "fix" / "rows.txt").read_bytes() == b"row 1\nrow 2\n"

    code, out, _ = _run(capsys, "data", "list")
    assert _row(out, "fixture").rstrip(" │").endswith("cache")


def test_checksum_mismatch_is_one_line(capsys, mirror: Path, tmp_path: Path) -> None:
    (mirror / "fix" / "rows.txt").write_bytes(b"row 1\nrow X\n")
    code, out, err = _run(capsys, "data", "pull", "fixture", "--mirror", str(mirror))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: data set 'fixture': fix/rows.txt")
    assert "checksum" in err
    assert not (tmp_path / "cache" / "data").exists()


def test_unknown_name_is_one_line(capsys, mirror: Path) -> None:
    code, _, err = _run(capsys, "data", "pull", "nope")
    assert code == 2 and err.strip() == "error: unknown data set 'nope'; known: math500, math_functional, gsm8k, " \
                                        "bigbench, paper-m3, fixture (or 'all')"


def test_offline_pull_is_one_line_and_fails(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on: the real registry's files, from nowhere
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    env = {"PATH": "/usr/bin:/bin", "LBT_CACHE_DIR": str(tmp_path / "cache"), "LBT_DATA_MIRROR": dead}
    out = subprocess.run([sys.executable, "-m", "lbt_agents", "data", "pull", "gsm8k"], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=120, check=False)
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: data set 'gsm8k': cannot download"), out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "cache" / "data").exists()
