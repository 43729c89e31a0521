"""Symbolic math checks that always finish: math-verify/sympy run in worker processes with a deadline.

A small pool of worker processes (started on first use, reused) takes one check at a time each.
A worker stops its own check a little before the deadline; one that still has not answered at the
deadline is killed and replaced. Workers die with the process that started them (a parent-death
signal on Linux, a watch on the parent's pid elsewhere, and an ``atexit`` clean-up).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

_WORKER_SCRIPT = Path(__file__).with_name("_verify_worker.py")
_START_TIMEOUT_S = 60.0
"""How long a new worker may take to import sympy and math-verify (not part of any check's bound)."""
_RETRY_START_AFTER_S = 5.0
"""After a worker failed to start, checks fail at once (with the reason) for this long."""


@dataclass(frozen=True)
class SymbolicResult:
    """The outcome of one symbolic check: ``equal`` when it finished, else why it did not."""

    equal: bool
    timed_out: bool = False
    error: str | None = None


def default_workers() -> int:
    """``LBT_GRADE_WORKERS`` or 2 (up to 4 on larger machines)."""
    raw = os.environ.get("LBT_GRADE_WORKERS", "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1:
            from lbt_agents.errors import ConfigError

            raise ConfigError(f"LBT_GRADE_WORKERS must be a whole number >= 1, got {raw!r}")
        return value
    return min(4, max(2, (os.cpu_count() or 2) // 2))


class _Worker:
    """One worker process and the line protocol to it."""

    def __init__(self) -> None:
        if not sys.executable:
            raise RuntimeError("no Python executable to start a grading worker with")
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-u", str(_WORKER_SCRIPT), str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
        )
        self._buffer = b""
        try:
            hello = self._read(time.monotonic() + _START_TIMEOUT_S)
            if hello is None:
                raise RuntimeError(f"grading worker did not start within {_START_TIMEOUT_S:g} s")
            if not hello.get("ready"):
                raise RuntimeError(f"grading worker cannot run math-verify: {hello.get('error')}")
        except BaseException:
            self.kill()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check(self, gold: str, pred: str, timeout_s: float) -> SymbolicResult | None:
        """The worker's answer, or ``None`` when it did not answer within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        margin = min(0.5, 0.25 * timeout_s)
        job = {"gold": gold, "pred": pred, "soft_s": max(0.001, timeout_s - margin)}
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(job) + "\n").encode())
        answer = self._read(deadline)
        if answer is None:
            return None
        if answer.get("timeout"):
            return SymbolicResult(False, timed_out=True)
        return SymbolicResult(bool(answer.get("equal")))

    def _read(self, deadline: float) -> dict | None:
        """The next JSON line, or ``None`` at the deadline; ``EOFError`` when the worker exited."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(left * 1000):
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=1)
                raise EOFError(f"grading worker exited (code {self.proc.returncode})")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()  # type: ignore[union-attr]


@dataclass
class _Job:
    gold: str
    pred: str
    timeout_s: float
    future: Future


class SymbolicPool:
    """Worker processes that run math-verify, each check bounded by its own ``timeout_s``.

    :meth:`submit` never blocks; the future resolves within ``timeout_s`` of a worker taking the check
    (plus the start of a worker, once). Each worker is driven by one long-lived thread, which also
    started it, so Linux's parent-death signal stays armed for the process's whole life.
    """

    def __init__(self, workers: int) -> None:
        self.size = workers
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._drivers: list[threading.Thread] = []
        self._started: list[threading.Event] = []
        self._workers: dict[int, _Worker] = {}
        self._start_failure: tuple[float, str] | None = None
        self._closed = False
        self.kills = 0
        """How many workers were killed for overrunning a deadline."""

    def submit(self, gold: str, pred: str, timeout_s: float) -> Future:
        """A future of the :class:`SymbolicResult` of comparing ``gold`` and ``pred``."""
        future: Future = Future()
        with self._lock:
            if self._closed:
                future.set_result(SymbolicResult(False, error="grading workers are shut down"))
                return future
            self._spawn_drivers()
            self._jobs.put(_Job(gold, pred, timeout_s, future))  # before any close() marks the end
        return future

    def worker_pids(self) -> list[int]:
        """The pids of the running workers."""
        with self._lock:
            return [w.pid for w in self._workers.values()]

    def close(self) -> None:
        """Kill every worker; later checks fail at once with a reason."""
        with self._lock:
            self._closed = True
            workers = list(self._workers.values())
            self._workers.clear()
            for _ in self._drivers:
                self._jobs.put(None)
        for worker in workers:
            worker.kill()

    def start(self) -> None:
        """Start every worker now and wait until they are ready (else the first checks start them)."""
        with self._lock:
            if self._closed:
                return
            self._spawn_drivers()
            started = list(self._started)
        for event in started:
            event.wait(_START_TIMEOUT_S + 5)

    def _spawn_drivers(self) -> None:
        """Start the missing drivers (with the lock held); each starts its worker first."""
        while len(self._drivers) < self.size:
            slot = len(self._drivers)
            started = threading.Event()
            driver = threading.Thread(target=self._drive, args=(slot, started), name=f"lbt-grade-{slot}", daemon=True)
            self._drivers.append(driver)
            self._started.append(started)
            driver.start()

    def _drive(self, slot: int, started: threading.Event) -> None:
        try:
            self._worker(slot)
        finally:
            started.set()
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if not job.future.set_running_or_notify_cancel():
                continue
            try:
                result = self._run(slot, job)
            except BaseException as exc:  # noqa: BLE001 - the future must always resolve
                result = SymbolicResult(False, error=f"{type(exc).__name__}: {exc}")
            job.future.set_result(result)
            if result.timed_out:  # have a fresh worker ready for the next check
                self._worker(slot)

    def _run(self, slot: int, job: _Job) -> SymbolicResult:
        """Run ``job`` on this slot's worker; where the worker dies, once more on a fresh one in the time left."""
        left = job.timeout_s
        for attempt in (1, 2):
            worker = self._worker(slot)
            if isinstance(worker, str):
                return SymbolicResult(False, error=worker)
            began = time.monotonic()
            try:
                result = worker.check(job.gold, job.pred, left)
            except (EOFError, OSError, ValueError) as exc:  # it died: a crash in sympy, or it was dying already
                self._drop(slot, worker)
                left -= time.monotonic() - began
                if attempt == 2 or left < 0.05:
                    return SymbolicResult(False, error=str(exc) or type(exc).__name__)
                continue
            if result is None:  # overran the deadline
                self.kills += 1
                self._drop(slot, worker)
                return SymbolicResult(False, timed_out=True)
            return result
        raise AssertionError("unreachable")

    def _worker(self, slot: int) -> _Worker | str:
        """This slot's running worker (started if needed), or why none could start."""
        with self._lock:
            worker = self._workers.pop(slot, None)
            if worker is not None and worker.proc.poll() is None:
                self._workers[slot] = worker
                return worker
            failure = self._start_failure
            if self._closed:
                return "grading workers are shut down"
        if worker is not None:  # it died between checks
            worker.kill()
        if failure is not None and time.monotonic() - failure[0] < _RETRY_START_AFTER_S:
            return failure[1]
        try:
            worker = _Worker()
        except Exception as exc:  # noqa: BLE001
            reason = str(exc) or type(exc).__name__
            with self._lock:
                self._start_failure = (time.monotonic(), reason)
            return reason
        with self._lock:
            if self._closed:
                worker.kill()
                return "grading workers are shut down"
            self._workers[slot] = worker
            self._start_failure = None
        return worker

    def _drop(self, slot: int, worker: _Worker) -> None:
        with self._lock:
            if self._workers.get(slot) is worker:
                del self._workers[slot]
        worker.kill()


_SHARED: SymbolicPool | None = None
_SHARED_LOCK = threading.Lock()


def shared_pool() -> SymbolicPool:
    """The process's pool (created on first use, sized by :func:`default_workers`)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = SymbolicPool(default_workers())
        return _SHARED


def shutdown_shared_pool() -> None:
    """Kill the shared pool's workers (a later check starts a new pool)."""
    global _SHARED
    with _SHARED_LOCK:
        pool, _SHARED = _SHARED, None
    if pool is not None:
        pool.close()


def _forget_in_child() -> None:
    """After ``fork``: the parent's workers are not ours to use or to kill."""
    global _SHARED, _SHARED_LOCK
    _SHARED, _SHARED_LOCK = None, threading.Lock()


atexit.register(shutdown_shared_pool)
os.register_at_fork(after_in_child=_forget_in_child)
