"""Fault tests on the real vLLM server: runs survive kill -9 and a server outage."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration._helpers import cached_calls, kill9, lbt, m1_config, served_requests, spawn_lbt, wait_for

pytestmark = pytest.mark.integration

TPS, PAIRS, EPS = 4, 3, 2
TEACHER_CALLS = TPS * (PAIRS + 1)


def _total_calls(run: Path) -> int:
    import json

    summary = json.loads((run / "summary.json").read_text())
    return summary["tokens"]["teacher"]["calls"] + summary["exams"]


def test_kill9_midway_then_resume_requests_nothing_twice(tmp_path: Path, embedded_classroom) -> None:
    url = embedded_classroom.base_url("smollm2-135m")
    cfg = m1_config(tmp_path / "m1.yaml", url, tps=TPS, pairs=PAIRS, eps=EPS, max_concurrency=2)
    run = tmp_path / "runs" / "k"
    proc = spawn_lbt("m1", "--config", str(cfg), "--run-id", "k", "--no-progress")
    wait_for(lambda: cached_calls(run / "cache.sqlite") >= TEACHER_CALLS + 1, 600, "a finished exam", proc)
    kill9(proc)

    before = served_requests(url)
    finished = cached_calls(run / "cache.sqlite")
    out = lbt("m1", "--config", str(cfg), "--resume", "k", "--no-progress", timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    again = served_requests(url) - before
    total = _total_calls(run)
    assert finished < total
    # Exactly the unfinished calls went to the server: finished exams requested again = 0.
    assert again == total - finished


def test_server_down_midway_then_restart_and_resume(tmp_path: Path, embedded_classroom) -> None:
    if not hasattr(embedded_classroom, "server"):
        pytest.skip("the test server is external (LBT_TEST_BASE_URL); it cannot be stopped here")
    url = embedded_classroom.base_url("smollm2-135m")
    cfg = m1_config(tmp_path / "m1.yaml", url, tps=TPS, pairs=PAIRS, eps=EPS, max_concurrency=2, max_retries=1)
    run = tmp_path / "runs" / "d"
    proc = spawn_lbt("m1", "--config", str(cfg), "--run-id", "d", "--no-progress")
    server = embedded_classroom.server("smollm2-135m")
    try:
        wait_for(lambda: cached_calls(run / "cache.sqlite") >= TEACHER_CALLS + 2, 600, "a few finished exams", proc)
        server.stop()
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 3, output[-3000:]
        last = output.strip().splitlines()[-1]
        assert last.startswith("error: agent 'student': endpoint") and "resume" in last
    finally:
        if proc.poll() is None:
            kill9(proc)
        endpoint = server.restart()
    assert endpoint.base_url == url  # same port: the saved run config still points at it

    finished = cached_calls(run / "cache.sqlite")
    before = served_requests(url)
    out = lbt("m1", "--config", str(cfg), "--resume", "d", "--no-progress", timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert served_requests(url) - before == _total_calls(run) - finished
