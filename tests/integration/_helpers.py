"""Helpers for integration tests against a real vLLM server."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
MODEL = "smollm2-135m"


LABEL_TASK = {"name": "knights_knaves", "options": {"size": 100}}
"""A label task that reasoning-gym generates (70 train / 30 test problems): the integration tests need no
reference data files (the BIG-bench loaders are tested on the real files in tests/tasks)."""


def m1_config(path: Path, base_url: str, *, tps: int, pairs: int, eps: int, **extra: Any) -> Path:
    """A small M1 run config on GSM8K-functional against ``base_url``."""
    agent = {"model": MODEL, "base_url": base_url, "timeout_s": 120, "max_retries": extra.pop("max_retries", 2)}
    cfg = {
        "task": {"name": "gsm8k_functional", "limit": tps, "eps_per_tp": eps},
        "classroom": {
            "teacher": {**agent, "name": "teacher", "role": "teacher",
                        "sampling": {"temperature": 0.8, "n": pairs, "max_tokens": 256}},
            "students": [{**agent, "name": "student", "sampling": {"temperature": 0.0, "max_tokens": 128}}],
        },
        "m1": {"pairs_per_tp": pairs},
        "output_dir": str(path.parent / "runs"),
        **extra,
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def lbt(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lbt_agents", *args], capture_output=True, text=True, **kwargs)


def spawn_lbt(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lbt_agents", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def cached_calls(cache: Path) -> int:
    if not cache.exists():
        return 0
    with sqlite3.connect(cache) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def wait_for(predicate: Any, timeout: float, what: str, proc: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended ({proc.returncode}) before {what}: {proc.stdout.read()[-2000:]}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _metric(base_url: str, name: str) -> float:
    text = httpx.get(base_url.removesuffix("/v1") + "/metrics", timeout=10).text
    return sum(float(m.group(1)) for m in re.finditer(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def served_requests(base_url: str) -> int:
    """Requests the server has finished, once it is idle (killed clients' requests still finish)."""
    wait_for(
        lambda: _metric(base_url, "vllm:num_requests_running") + _metric(base_url, "vllm:num_requests_waiting") == 0,
        120,
        "an idle server",
    )
    time.sleep(0.5)
    return int(_metric(base_url, "vllm:request_success_total"))


def kill9(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
