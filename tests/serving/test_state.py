"""``lbt serve --stop`` stops exactly what was recorded, and only if the pid still runs that command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil

from lbt_agents.serving import _state


def _spawn(tag: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", f"import time; time.sleep(300)  # {tag}"], start_new_session=True)


def _entry(proc: subprocess.Popen[bytes], cmdline: list[str] | None = None) -> _state.Started:
    return _state.Started("m", proc.pid, 1234, tuple(cmdline or psutil.Process(proc.pid).cmdline()), "log", 1)


def test_stop_kills_matching_and_spares_mismatched(tmp_path: Path) -> None:
    ours, stranger = _spawn("ours"), _spawn("stranger")
    try:
        path = _state.state_path(tmp_path)
        # The stranger's pid is recorded with another command line: a reused pid must never be killed.
        _state.record(path, [_entry(ours), _entry(stranger, ["python", "-m", "vllm.entrypoints.openai.api_server"])])
        assert len(_state.read(path)) == 2
        said: list[str] = []
        assert _state.stop_recorded(path, say=said.append) == 1
        assert ours.wait(timeout=30) is not None
        assert stranger.poll() is None
        assert any("skipped" in s for s in said)
        assert not path.exists()
    finally:
        for p in (ours, stranger):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_forget_keeps_other_entries(tmp_path: Path) -> None:
    a, b = _spawn("a"), _spawn("b")
    try:
        path = _state.state_path(tmp_path)
        _state.record(path, [_entry(a)])
        _state.record(path, [_entry(b)])
        _state.forget(path, {a.pid})
        assert [e.pid for e in _state.read(path)] == [b.pid]
    finally:
        for p in (a, b):
            p.kill()
            p.wait()


def test_corrupt_state_file_is_ignored(tmp_path: Path) -> None:
    path = _state.state_path(tmp_path)
    path.write_text("{not json")
    assert _state.read(path) == []
    assert _state.stop_recorded(path, say=lambda _m: None) == 0
