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
    assert "1.12 GB" in rows["qwen2.5-coder-1.5b"]


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


def _wait_lines(proc: subprocess.Popen[str], n: int) -> list[str]:
    lines: list[str] = []
    while len(lines) < n:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line, f"lbt serve ended early: {proc.stderr.read()}"  # type: ignore[union-attr]
        lines.append(line.strip())
    return lines


def _pid_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_serve_lifecycle_and_stop(tmp_path: Path) -> None:
    """`lbt serve` prints endpoints and records them; `--stop` stops exactly those; `lbt serve` then exits."""
    import signal

    for name in ("smollm2-135m", "qwen2.5-coder-0.5b"):
        _fake_pulled(tmp_path, name)
    fake_lbt = Path(__file__).with_name("_fake_lbt.py")
    proc = subprocess.Popen(
        [sys.executable, str(fake_lbt), "serve", "--cache-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lines = _wait_lines(proc, 2)
        assert [ln.split()[0] for ln in lines] == ["smollm2-135m", "qwen2.5-coder-0.5b"]
        assert all(ln.split()[1].startswith("http://127.0.0.1:") and " log: " in ln for ln in lines)
        state = json.loads((tmp_path / "serve-state.json").read_text())
        pids = [e["pid"] for e in state]
        assert len(pids) == 2 and all(_pid_alive(p) for p in pids)
        assert all(e["owner_pid"] == proc.pid for e in state)

        stop = subprocess.run(
            [sys.executable, "-c", "from lbt_agents.cli import main; main()", "serve", "--stop",
             "--cache-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert stop.returncode == 0, stop.stderr
        assert stop.stdout.strip().splitlines()[-1] == "stopped 2 server(s)"
        assert not any(_pid_alive(p) for p in pids)
        assert proc.wait(timeout=60) == 0  # it noticed its servers were gone and exited
        assert "exited" in proc.stderr.read()
        assert not (tmp_path / "serve-state.json").exists()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


def test_serve_stops_its_servers_on_sigterm(tmp_path: Path) -> None:
    import signal

    _fake_pulled(tmp_path, "smollm2-135m")
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_fake_lbt.py")), "serve", "--model", "smollm2-135m",
         "--cache-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_lines(proc, 1)
        pid = json.loads((tmp_path / "serve-state.json").read_text())[0]["pid"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert not _pid_alive(pid)
        assert not (tmp_path / "serve-state.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
