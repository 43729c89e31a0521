"""The state file of ``lbt serve``: what it started, so ``lbt serve --stop`` stops exactly that."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from lbt_agents.serving.server import kill_tree

STATE_FILE = "serve-state.json"


@dataclass(frozen=True)
class Started:
    """One server that ``lbt serve`` started."""

    model: str
    pid: int
    port: int
    cmdline: tuple[str, ...]
    log_path: str
    owner_pid: int
    """The ``lbt serve`` process that started it."""


def state_path(cache_dir: Path) -> Path:
    return cache_dir / STATE_FILE


def record(path: Path, entries: list[Started]) -> None:
    """Add ``entries`` to the state file."""
    with _edit(path) as items:
        items.extend(entries)


def forget(path: Path, pids: set[int]) -> None:
    """Drop the entries of ``pids`` from the state file (and the file when it becomes empty)."""
    with _edit(path) as items:
        items[:] = [e for e in items if e.pid not in pids]


def read(path: Path) -> list[Started]:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    out = []
    for item in raw if isinstance(raw, list) else []:
        try:
            out.append(Started(**{**item, "cmdline": tuple(item["cmdline"])}))
        except (TypeError, KeyError):
            continue
    return out


def matches(entry: Started) -> bool:
    """True if ``entry.pid`` is alive and still runs the recorded command line."""
    try:
        return tuple(psutil.Process(entry.pid).cmdline()) == entry.cmdline
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def stop_recorded(path: Path, say: Callable[[str], None] = print) -> int:
    """Stop every recorded server whose pid still runs its recorded command line; returns how many."""
    entries = read(path)
    ours = [e for e in entries if matches(e)]  # decided before killing anything
    for entry in entries:
        if entry in ours:
            kill_tree(entry.pid)
            say(f"stopped {entry.model} (pid {entry.pid}, port {entry.port})")
        else:
            say(f"skipped {entry.model}: pid {entry.pid} no longer runs its server")
    forget(path, {e.pid for e in entries})
    return len(ours)


@contextmanager
def _edit(path: Path) -> Iterator[list[Started]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.with_name(path.name + ".lock")).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        items = read(path)
        yield items
        if items:
            tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
            tmp.write_text(json.dumps([asdict(e) for e in items], indent=2))
            os.replace(tmp, path)
        else:
            path.unlink(missing_ok=True)
