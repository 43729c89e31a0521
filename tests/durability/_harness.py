"""Start, watch and kill ``_m1_child.py`` runs; read what their checkpoint holds."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHILD = Path(__file__).with_name("_m1_child.py")
REPO = Path(__file__).resolve().parents[2]


def start(out: Path, *args: str) -> subprocess.Popen[bytes]:
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, str(CHILD), str(out), *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Wait for a run that should end by itself; its output in the error if it fails."""
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill(proc)
        raise AssertionError(f"the run did not finish in {timeout} s") from None
    assert proc.returncode == 0, output.decode(errors="replace")[-3000:]


def kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.communicate()


def events(out: Path, event: str, who: str | None = None) -> list[str]:
    """The keys of the requests logged with ``event`` (``asked``/``answered``), by ``who`` or students."""
    path = out / "requests.log"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]
    return [r["key"] for r in rows if r["event"] == event
            and (r["who"] == who if who is not None else r["who"] != "teacher")]


def wait_until(condition: Callable[[], bool], timeout: float, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return condition()
        time.sleep(0.02)
    return False


def results(out: Path) -> dict[str, Any]:
    """A finished child run's M1 results (``results.json``)."""
    return json.loads((out / "results.json").read_text())


def saved(out: Path, channel: str, thread: str | None = None) -> dict[str, Any]:
    """What a resume of the run gets back for a merged channel (``exams``, ``pairs``): each TP's
    shard when the TP finished, else its thread's latest checkpoint value and finished tasks' writes
    (with ``thread``: that one thread's, a run of the generic runner)."""
    from lbt_agents.tpjobs import ShardStore, thread_id

    from tests.durability._m1_child import ITEMS, RUN_ID

    if thread is not None:
        return _thread_values(out / RUN_ID / "checkpoints.sqlite", thread, channel)
    values: dict[str, Any] = {}
    store = ShardStore(out / RUN_ID)
    for item in ITEMS:
        tp_id = item["tp"]["id"]
        for result in store.results([tp_id]):
            for pair in result["pairs"]:
                if channel == "pairs":
                    values[pair["id"]] = pair
                values.update({e["id"]: e for e in pair["exams"]} if channel == "exams" else {})
        if not store.finished(tp_id):
            values.update(_thread_values(out / RUN_ID / "checkpoints.sqlite", thread_id(RUN_ID, tp_id), channel))
    return values


def _thread_values(db: Path, thread: str, channel: str) -> dict[str, Any]:
    if not db.exists():
        return {}
    from langgraph.checkpoint.sqlite import SqliteSaver

    from lbt_agents._serde import compressed_serde

    conn = sqlite3.connect(str(db), timeout=30)
    try:
        saver = SqliteSaver(conn, serde=compressed_serde())
        saver.is_setup = True  # read only: never create tables under a running writer
        try:
            found = saver.get_tuple({"configurable": {"thread_id": thread, "checkpoint_ns": ""}})
        except sqlite3.OperationalError:  # the child has not created the tables yet
            return {}
    finally:
        conn.close()
    if found is None:
        return {}
    values = dict(found.checkpoint["channel_values"].get(channel) or {})
    for _task, name, value in found.pending_writes or []:
        if name == channel and isinstance(value, dict):
            values.update(value)
    return values


def saved_exam_keys(out: Path, thread: str | None = None) -> set[str]:
    """The request keys of the exams the run has saved (a student reply starts with ``[key]``)."""
    keys = set()
    for record in saved(out, "exams", thread).values():
        found = re.match(r"\[(\w+)\]", record["text"])
        assert found, record
        keys.add(found.group(1))
    return keys
