"""One process per run directory: an advisory lock held for the run's lifetime."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lbt_agents.config import RunConfig
from lbt_agents.errors import ConfigError
from lbt_agents.runs import lock_run, open_run
from lbt_agents.stub import StubServer
from tests.runs._cli import ROOT, lbt, lbt_env, one_error_line
from tests.server import _arithmetic as arithmetic

HOLD = """
import sys, time
from pathlib import Path
from lbt_agents.runs import lock_run
with lock_run(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def holder(path: Path) -> subprocess.Popen[str]:
    """Another process holding ``path``'s lock (started here; the caller stops it)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    proc = holder(tmp_path)
    try:
        with pytest.raises(ConfigError) as err, lock_run(tmp_path):
            pass
        assert f"run '{tmp_path.name}' is in use by process {proc.pid}" in str(err.value)
    finally:
        proc.kill()  # kill -9: the kernel drops the lock with the process
        proc.wait(10)
    with lock_run(tmp_path):  # free again
        assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())


def test_one_process_cannot_open_a_run_twice(tmp_path: Path) -> None:
    cfg = RunConfig(run_id="r1", output_dir=tmp_path)
    with open_run(cfg) as (_, run):
        with pytest.raises(ConfigError, match=rf"run 'r1' is in use by process {os.getpid()}"), open_run(cfg):
            pass
        with pytest.raises(ConfigError, match="in use"), open_run(cfg, resume="r1"):
            pass
    with open_run(cfg, resume="r1") as (_, again):  # released when the block ends
        assert again.path == run.path


async def test_the_runner_holds_the_lock_for_the_whole_run(tmp_path: Path) -> None:
    from lbt_agents.runner import arun_graph
    from tests.graphs.test_m1_scoring import ITEMS, models, run_config

    seen: list[str] = []

    def try_lock(update: dict, run_dir: Path) -> None:
        try:
            with lock_run(run_dir):
                seen.append("free")
        except ConfigError as exc:
            seen.append(str(exc))

    cfg = run_config(tmp_path)
    await arun_graph("lbt_agents.graphs.m1_scoring:from_config", cfg, inputs=lambda c: {"items": ITEMS},
                     models=models(1), on_update=try_lock)
    assert seen and all(f"is in use by process {os.getpid()}" in s for s in seen), seen
    with lock_run(tmp_path / "t"):  # released at the end
        pass


USER_GRAPH = '''
from lbt_agents import m1_graph
from tests.server._arithmetic import item


def build(cfg):
    return m1_graph(cfg.m1, output_key="answers", name="slow_graph")


def inputs(cfg):
    return {"items": [item("tp1", 2, 3), item("tp2", 10, 5)]}
'''


def test_a_second_process_on_a_running_run_is_refused(tmp_path: Path) -> None:
    """Today: three processes with the same --run-id all exit 0 with different results."""
    (tmp_path / "slow_graph.py").write_text(USER_GRAPH)
    release = threading.Event()

    def respond(body: dict, choice: int) -> str:  # the first run's requests wait until the others were tried
        release.wait(120)
        return arithmetic.respond(body, choice)

    with StubServer(respond=respond, models=(arithmetic.TEACHER_MODEL, arithmetic.STUDENT_MODEL)) as stub:
        config = arithmetic.write_run_config(tmp_path / "run.yaml", stub.base_url)
        yaml_text = config.read_text().replace("max_concurrency: 16", "max_concurrency: 2")
        config.write_text(yaml_text)
        first = subprocess.Popen([sys.executable, "-m", "lbt_agents", "run", "slow_graph:build", "--config", str(config),
                                  "--run-id", "same", "--no-progress"], cwd=tmp_path, env=lbt_env(tmp_path),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            lock = tmp_path / "runs" / "same" / ".lock"
            deadline = time.monotonic() + 60
            while not (lock.is_file() and lock.read_text().strip()) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert lock.read_text().strip() == str(first.pid)
            again = lbt("run", "slow_graph:build", "--config", str(config), "--run-id", "same", "--no-progress",
                        cwd=tmp_path)
            resumed = lbt("run", "slow_graph:build", "--resume", "same", "--no-progress", cwd=tmp_path)
            assert first.poll() is None, "the first run ended before the others were tried"
            release.set()
            for out in (again, resumed):
                line = one_error_line(out)
                assert line.startswith(f"error: run 'same' is in use by process {first.pid} "), line
            _, err = first.communicate(timeout=120)
        finally:
            release.set()
            if first.poll() is None:
                first.send_signal(signal.SIGKILL)
                first.wait(10)
        assert first.returncode == 0, err
        outputs = json.loads((tmp_path / "runs" / "same" / "outputs.json").read_text())
        assert set(outputs["answers"]) == {"tp1", "tp2"}
        assert stub.requests == arithmetic.model_calls(2)  # the refused ones asked for nothing
