"""``lbt models`` and ``lbt serve``: one-line errors, the table, --stop (offline)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lbt_agents.cli import main
from lbt_agents.serving import pull as pull_mod

from .conftest import FakeHub


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = 0
    try:
        main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _fake_pulled(cache: Path, name: str) -> Path:
    folder = cache / "models" / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / pull_mod.MANIFEST).write_text(
        json.dumps({"name": name, "files": {"config.json": {"size": 2, "sha256": "x"}}})
    )
    return folder


def test_unknown_model_is_one_line(capsys, tmp_path: Path) -> None:
    code, out, err = _run(capsys, "models", "pull", "llama-9000", "--cache-dir", str(tmp_path))
    assert code == 4
    assert err.strip().splitlines() == [err.strip()]
    assert err.startswith("error: unknown model 'llama-9000'; known models:") and "smollm2-135m" in err
    code, _, err = _run(capsys, "serve", "--model", "llama-9000", "--cache-dir", str(tmp_path))
    assert code == 4 and err.startswith("error: unknown model 'llama-9000'")


def test_list_shows_pulled_state(capsys, tmp_path: Path) -> None:
    _fake_pulled(tmp_path, "smollm2-135m")
    code, out, _ = _run(capsys, "models", "list", "--cache-dir", str(tmp_path))
    assert code == 0
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 3}
    assert "yes" in rows["smollm2-135m"] and "no" in rows["qwen2.5-coder-0.5b"]
    assert "unmeasured" in rows["qwen2.5-coder-1.5b"]


def test_pull_via_cli_uses_env_cache_dir(capsys, tmp_path: Path, fake_hub: FakeHub, monkeypatch) -> None:
    monkeypatch.setenv("LBT_CACHE_DIR", str(tmp_path / "c"))
    code, out, _ = _run(capsys, "models", "pull", "fake-tiny")
    assert code == 0 and out.strip() == f"fake-tiny: {tmp_path / 'c' / 'models' / 'fake-tiny'}"
    code, out, _ = _run(capsys, "models", "pull", "fake-tiny")
    assert code == 0 and "already pulled" in out
    assert len(fake_hub.conversions) == 1


def test_serve_on_a_busy_port_is_one_line(capsys, tmp_path: Path) -> None:
    _fake_pulled(tmp_path, "smollm2-135m")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = _run(capsys, "serve", "--model", "smollm2-135m", "--port", str(port), "--cache-dir", str(tmp_path))
    assert code == 4
    assert err.strip() == f"error: port {port} on 127.0.0.1 is already in use; pick another port or stop what uses it"
    assert not (tmp_path / "serve-state.json").exists()


def test_serve_stop_with_nothing_recorded(capsys, tmp_path: Path) -> None:
    code, out, _ = _run(capsys, "serve", "--stop", "--cache-dir", str(tmp_path))
    assert code == 0 and out.strip() == "stopped 0 server(s)"


def test_console_script_prints_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from lbt_agents.cli import main; main()", "models", "pull", "nope"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 4
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: unknown model 'nope'")
