"""The Ray executor on a local 2-worker Ray cluster against the stub: the local executor's results,
a worker killed mid-TP retried without losing or double-counting work, bad addresses refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lbt_agents.config import RunConfig
from lbt_agents.m1 import arun_m1
from lbt_agents.stub import StubServer
from tests.server import _arithmetic as arithmetic

ray = pytest.importorskip("ray", reason="the Ray executor needs: pip install 'lbt-agents[ray]'")

REPO = Path(__file__).resolve().parents[2]
ITEMS = [arithmetic.item(f"tp{i}", 2 * i + 1, i + 3) for i in range(4)]
MODELS = (arithmetic.TEACHER_MODEL, arithmetic.STUDENT_MODEL)


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(autouse=True)
def _items(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lbt_agents.tasks.load_task", lambda cfg: ITEMS)


def config(base_url: str, tmp_path: Path, run_id: str, **executor: Any) -> RunConfig:
    base = arithmetic.run_config(base_url)
    return RunConfig.model_validate({**base, "output_dir": str(tmp_path), "run_id": run_id, "executor": executor,
                                     "max_concurrency": 4})


def tables(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    from datasets import load_from_disk

    return {name: [{k: v for k, v in row.items() if k != "run_id"} for row in load_from_disk(str(run_dir / name))]
            for name in ("tps", "pairs", "exams")}


def same_summary(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: summary[k] for k in ("tps", "accuracy", "exams", "student_accuracy", "teacher_pair_accuracy", "tokens")}


async def test_ray_gives_the_local_executors_results(tmp_path: Path, cluster: None) -> None:
    with StubServer(respond=arithmetic.respond, models=MODELS, delay_ms=20) as stub:
        local = await arun_m1(config(stub.base_url, tmp_path, "local"), progress=False)
        asked = stub.requests
        stub.reset()
        remote = await arun_m1(config(stub.base_url, tmp_path, "ray", kind="ray", max_tps_in_flight=2), progress=False)
        assert stub.requests == asked == arithmetic.model_calls(len(ITEMS))
        # max_concurrency (4) is the run's total: the 2 TP tasks in flight, each with its own classroom, get 2 each
        assert 2 <= stub.peak_in_flight <= 4
    assert remote.results == local.results
    assert tables(remote.run_dir) == tables(local.run_dir)
    assert same_summary(remote.summary) == same_summary(local.summary)
    assert remote.summary["requests"]["s0"]["requests"] == local.summary["requests"]["s0"]["requests"] > 0


async def test_a_worker_killed_mid_tp_is_retried_and_nothing_counts_twice(tmp_path: Path, cluster: None,
                                                                          postgres_url: str) -> None:
    """The workers share a Postgres checkpointer (as on several machines); the retried job continues the TP."""
    with StubServer(respond=arithmetic.respond, models=MODELS) as stub:
        reference = await arun_m1(config(stub.base_url, tmp_path, "reference"), progress=False)
    killed: list[int] = []
    with StubServer(respond=arithmetic.respond, models=MODELS, delay_ms=30) as stub:
        def kill_a_worker_mid_run() -> None:  # once a third of the requests are in, SIGKILL a busy worker
            import psutil

            deadline = time.monotonic() + 120
            while stub.requests < arithmetic.model_calls(len(ITEMS)) // 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            for proc in psutil.process_iter(["pid", "cmdline"]):
                if any("_tp_task" in part for part in proc.info["cmdline"] or []):
                    os.kill(proc.info["pid"], signal.SIGKILL)
                    killed.append(proc.info["pid"])
                    return

        killer = threading.Thread(target=kill_a_worker_mid_run)
        killer.start()
        cfg = config(stub.base_url, tmp_path, "killed", kind="ray", max_tps_in_flight=2)
        cfg = cfg.model_copy(update={"checkpoint": cfg.checkpoint.model_copy(update={"backend": "postgres",
                                                                                     "url": postgres_url})})
        result = await arun_m1(cfg, progress=False)
        killer.join()
        asked = stub.requests
    assert killed, "no worker was running a TP job"
    assert result.results == reference.results  # nothing lost
    assert same_summary(result.summary) == same_summary(reference.summary)  # nothing counted twice
    extra = asked - arithmetic.model_calls(len(ITEMS))
    assert 0 <= extra <= 4 + arithmetic.PAIRS + 1  # at most what the dead worker had in flight is asked again


def lbt_m1(tmp_path: Path, base_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    run_config = {**arithmetic.run_config(base_url), "task": {"name": "gsm8k_functional", "limit": 1, "eps_per_tp": 1}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run_config))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "lbt_agents", "m1", "--config", str(tmp_path / "run.yaml"),
                           "--output-dir", str(tmp_path), "--no-progress", *args],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize(("args", "message"), [
    (["--executor", "ray", "--address", "127.0.0.1:9"], "error: cannot reach the Ray cluster at 127.0.0.1:9: "),
    (["--executor", "ray", "--address", "nowhere"], "error: executor.address 'nowhere' is not host:port"),
    (["--set", "checkpoint.backend=postgres", "--set", "checkpoint.url=postgresql://lbt@127.0.0.1:9/lbt"],
     "error: cannot reach the Postgres checkpointer at postgresql://lbt@127.0.0.1:9/lbt: "),
])
def test_unreachable_ray_or_postgres_is_one_line_before_any_request(tmp_path: Path, args: list[str],
                                                                     message: str) -> None:
    with StubServer(respond=arithmetic.respond, models=MODELS) as stub:
        out = lbt_m1(tmp_path, stub.base_url, *args)
        assert stub.requests == 0
    lines = out.stderr.strip().splitlines()
    assert out.returncode != 0 and len(lines) == 1, out.stderr
    assert lines[0].startswith(message), lines[0]
