"""``lbt stub serve``: prints its base URL, serves, stops on SIGTERM/SIGINT; bad input is one line."""

from __future__ import annotations

import selectors
import signal
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from lbt_agents.cli import main
from lbt_agents.stub import StubServer


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = 0
    try:
        main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _first_line(proc: subprocess.Popen[str], timeout: float = 20.0) -> str:
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise AssertionError(f"`lbt stub serve` printed nothing within {timeout} s")
    return proc.stdout.readline().strip()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_its_url_and_stops_on_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    script = tmp_path / "teacher.py"
    script.write_text("def respond(body, choice_index):\n    return f'scripted {choice_index}'\n")
    argv = ["stub", "serve", "--port", "0", "--script", str(script), "--model", "teacher"]
    proc = subprocess.Popen([sys.executable, "-m", "lbt_agents", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = _first_line(proc)
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        client = openai.OpenAI(base_url=url, api_key="x", max_retries=0)
        reply = client.chat.completions.create(model="teacher", messages=[{"role": "user", "content": "hi"}], n=2)
        client.close()
        assert [c.message.content for c in reply.choices] == ["scripted 0", "scripted 1"]
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "stopped after 1 completion request(s)" in err and "Traceback" not in err


def test_bad_input_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def respond(body, i):\n    return (\n")
    cases = {
        ("--host", "0.0.0.0"): "error: refusing to listen on 0.0.0.0",
        ("--echo", "--text", "hi"): "error: give one of --echo, --text and --script",
        ("--script", str(broken)): f"error: stub script {broken} failed to load: SyntaxError",
        ("--script", str(tmp_path / "missing.py")): "error: stub script",
        ("--fail-first", "-1"): "error: --fail-first and --delay-ms must not be negative",
    }
    for args, start in cases.items():
        code, out, err = _run(capsys, "stub", "serve", "--port", "0", *args)
        assert code == 2 and out == "", args
        assert err.startswith(start) and err.count("\n") == 1, (args, err)


def test_a_port_in_use_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with StubServer() as stub:
        code, _, err = _run(capsys, "stub", "serve", "--port", str(stub.port))
    assert code == 2 and err == f"error: port {stub.port} on 127.0.0.1 is in use; pick another (port 0 picks a free one)\n"
