"""Run one program in its own sandboxed process tree and collect a :class:`RunResult`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import secrets
import shutil
import signal
import sys
import tempfile
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil

from lbt_agents.sandbox import _isolation as iso
from lbt_agents.sandbox._types import (
    DEFAULT_LIMITS,
    Isolation,
    IsolationChoice,
    Limits,
    RunResult,
    Status,
)

T = TypeVar("T")

_MEMORY_MARKERS = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory")
_CHUNK = 65536
_SEMAPHORES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def default_concurrency() -> int:
    """Sandboxes running at once per event loop (env LBT_SANDBOX_CONCURRENCY, default: CPU count)."""
    return max(1, int(os.environ.get("LBT_SANDBOX_CONCURRENCY") or os.cpu_count() or 1))


def _limiter() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    sem = _SEMAPHORES.get(loop)
    if sem is None:
        sem = _SEMAPHORES[loop] = asyncio.Semaphore(default_concurrency())
    return sem


@dataclass
class _Capture:
    limit: int
    data: bytearray = field(default_factory=bytearray)
    overflow: bool = False

    async def drain(self, reader: asyncio.StreamReader, on_overflow: Callable[[], None] | None) -> None:
        while chunk := await reader.read(_CHUNK):
            room = self.limit - len(self.data)
            if room > 0:
                self.data += chunk[:room]
            if len(chunk) > room and not self.overflow:
                self.overflow = True
                if on_overflow is not None:
                    on_overflow()

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


async def _pipe_reader(fd: int, transports: list[asyncio.BaseTransport]) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", 0))
    transports.append(transport)
    return reader


def _rlimits(limits: Limits, nproc: int) -> list[tuple[str, int, int]]:
    cpu = limits.cpu_limit_s
    mem = limits.memory_mb * 1024 * 1024
    fsize = limits.max_file_mb * 1024 * 1024
    return [
        ("RLIMIT_CPU", cpu, cpu + 1),
        ("RLIMIT_AS", mem, mem),
        ("RLIMIT_FSIZE", fsize, fsize),
        ("RLIMIT_NOFILE", limits.max_open_files, limits.max_open_files),
        ("RLIMIT_CORE", 0, 0),
        ("RLIMIT_NPROC", nproc, nproc),
    ]


def _bare_nproc(limits: Limits) -> int:
    """RLIMIT_NPROC counts all processes of the uid: allow what it runs now plus the budget."""
    if iso.is_root():
        return resource.RLIM_INFINITY  # not enforced for root anyway
    uid = os.getuid()
    threads = sum(p.num_threads() for p in psutil.process_iter() if _owned(p, uid))
    return threads + limits.max_processes + 1


def _owned(proc: psutil.Process, uid: int) -> bool:
    try:
        return proc.uids().real == uid
    except psutil.Error:
        return False


def _sweep(workdir: str, marker: str) -> int:
    """Kill processes (bare mode) that still carry this run's marker or sit in its folder."""
    killed = 0
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            env = proc.environ()
            cwd = proc.cwd()
        except psutil.Error:
            continue
        if env.get("LBT_SANDBOX") == marker or cwd == workdir or cwd.startswith(workdir + "/"):
            with contextlib.suppress(psutil.Error):
                proc.kill()
                killed += 1
    return killed


def _classify(
    report: dict[str, Any] | None, timed_out: bool, overflow: bool, stderr: str, limits: Limits
) -> tuple[Status, str]:
    if overflow:
        return "output_limit", f"more than {limits.max_output_bytes} bytes of output"
    if timed_out:
        return "timeout", f"wall-time limit of {limits.wall_s:g}s"
    if report is None:
        return "killed", "the sandbox's launcher died before the program finished"
    code = report["exit_code"]
    rss_mb = report["max_rss_kb"] / 1024
    if code == 0:
        return "ok", ""
    if code == -signal.SIGXCPU or (code == -signal.SIGKILL and report["cpu_s"] >= limits.cpu_limit_s):
        return "timeout", f"CPU-time limit of {limits.cpu_limit_s}s"
    tail = stderr[-4000:]
    if any(m in tail for m in _MEMORY_MARKERS) or (code < 0 and rss_mb >= 0.9 * limits.memory_mb):
        return "memory", f"memory limit of {limits.memory_mb} MiB"
    if code < 0:
        return "killed", f"killed by signal {signal.Signals(-code).name if -code in signal.valid_signals() else -code}"
    return "error", f"exit code {code}"


async def execute(
    files: dict[str, str],
    script: str,
    *,
    stdin: str = "",
    limits: Limits = DEFAULT_LIMITS,
    isolation: IsolationChoice = "auto",
    require_isolation: bool = False,
    python: str | None = None,
    side_channel: bool = False,
) -> tuple[RunResult, bytes]:
    """Run ``python -I <script>`` with ``files`` in a fresh folder; returns the result and
    what the program wrote to its side-channel fd (env ``LBT_SIDE_FD``) when asked for."""
    mode = iso.resolve_isolation(isolation, require_isolation=require_isolation)
    iso.note_used(mode)
    python = python or sys.executable
    async with _limiter():
        workdir = os.path.realpath(tempfile.mkdtemp(prefix="lbt-sandbox-"))
        marker = secrets.token_hex(8)
        try:
            return await _execute_in(workdir, marker, mode, files, script, stdin, limits, python, side_channel)
        finally:
            if mode == "bare":
                await asyncio.to_thread(_sweep, workdir, marker)
            shutil.rmtree(workdir, ignore_errors=True)


async def _execute_in(
    workdir: str,
    marker: str,
    mode: Isolation,
    files: dict[str, str],
    script: str,
    stdin: str,
    limits: Limits,
    python: str,
    side_channel: bool,
) -> tuple[RunResult, bytes]:
    uid = secrets.randbelow(100_000_000) + 2_000_000_000 if (mode == "bwrap" and iso.is_root()) else None
    for name, text in files.items():
        (Path(workdir) / name).write_text(text)
    if uid is not None:
        for path in [workdir, *(str(Path(workdir) / n) for n in files)]:
            os.chown(path, uid, uid)
    root = iso.SANDBOX_ROOT if mode == "bwrap" else workdir
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    report_r, report_w = os.pipe()
    side_r, side_w = os.pipe() if side_channel else (-1, -1)
    passed = [fd for fd in (report_w, side_w) if fd >= 0]
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": root,
        "TMPDIR": root,
        "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LBT_SANDBOX": marker,
    }
    if side_channel:
        env["LBT_SIDE_FD"] = str(side_w)
    if mode == "bwrap":
        nproc = limits.max_processes + 1  # + the launcher (pid 1 of the namespace)
    else:
        nproc = _bare_nproc(limits)
    cfg = {
        "report_fd": report_w,
        "pass_fds": [side_w] if side_channel else [],
        "uid": uid,
        "rlimits": _rlimits(limits, nproc),
        "argv": [python, "-I", f"{root}/{script}"],
        "env": env,
    }
    if mode == "bwrap":
        caps = iso.capabilities()
        assert caps.bwrap is not None
        prefix = iso.bwrap_prefix(caps.bwrap, workdir, python, str(iso.LAUNCHER))
        cmd = [*prefix, python, "-I", "-S", iso.LAUNCHER_IN_SANDBOX, json.dumps(cfg)]
    else:
        cmd = [python, "-I", "-S", str(iso.LAUNCHER), json.dumps(cfg)]

    start = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.PIPE,
            stdout=out_w,
            stderr=err_w,
            pass_fds=passed,
            start_new_session=True,
            env={"PATH": env["PATH"], "LANG": "C.UTF-8"},
            cwd=workdir,
        )
    except BaseException:
        for fd in (out_r, err_r, report_r, side_r):
            if fd >= 0:
                os.close(fd)
        raise
    finally:
        for fd in (out_w, err_w, *passed):
            os.close(fd)
    transports: list[asyncio.BaseTransport] = []
    try:
        return await _supervise(proc, mode, workdir, marker, limits, stdin, start, transports,
                                out_r, err_r, report_r, side_r)  # fmt: skip
    finally:
        for transport in transports:
            transport.close()


async def _supervise(
    proc: asyncio.subprocess.Process,
    mode: Isolation,
    workdir: str,
    marker: str,
    limits: Limits,
    stdin: str,
    start: float,
    transports: list[asyncio.BaseTransport],
    out_r: int,
    err_r: int,
    report_r: int,
    side_r: int,
) -> tuple[RunResult, bytes]:
    killed = False

    def kill() -> None:
        nonlocal killed
        if killed:
            return
        killed = True
        if mode == "bare":  # the launcher kills its descendants, then exits; the group is killed later
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGUSR1)
            return
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(proc.pid).children():
                child.kill()  # the launcher, pid 1 of the sandbox's namespace: all in it die
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    out, err = _Capture(limits.max_output_bytes), _Capture(limits.max_output_bytes)
    report_cap, side_cap = _Capture(1 << 16), _Capture(1 << 22)
    readers: list[Awaitable[None]] = [
        out.drain(await _pipe_reader(out_r, transports), kill),
        err.drain(await _pipe_reader(err_r, transports), kill),
        report_cap.drain(await _pipe_reader(report_r, transports), None),
    ]
    if side_r >= 0:
        readers.append(side_cap.drain(await _pipe_reader(side_r, transports), kill))

    async def feed() -> None:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(stdin.encode())
            await proc.stdin.drain()
        proc.stdin.close()

    work = asyncio.gather(feed(), *readers, proc.wait())
    timed_out = False
    try:
        await asyncio.wait_for(asyncio.shield(work), timeout=limits.wall_s)
    except TimeoutError:
        timed_out = True
        kill()
    if killed:
        if mode == "bare":  # let the launcher kill its descendants, then kill the group, then sweep
            await _settle(proc.wait(), 1.0)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            if not await _settle(work, 0.5):
                await asyncio.to_thread(_sweep, workdir, marker)
        if not await _settle(work, 5.0):
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
    wall = time.monotonic() - start

    report = None
    for line in report_cap.text().splitlines():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            report = json.loads(line)
            break
    stderr = err.text()
    status, detail = _classify(report, timed_out, out.overflow or err.overflow or side_cap.overflow, stderr, limits)
    if report is None and proc.returncode not in (None, 0) and mode == "bwrap" and not (timed_out or killed):
        detail += f" (bwrap exit {proc.returncode}: {stderr.strip().splitlines()[-1:] or ''})"
    result = RunResult(
        status=status,
        exit_code=None if report is None else report["exit_code"],
        stdout=out.text(),
        stderr=stderr,
        wall_s=wall,
        max_rss_mb=None if report is None else report["max_rss_kb"] / 1024,
        cpu_s=None if report is None else report["cpu_s"],
        stdout_truncated=out.overflow,
        stderr_truncated=err.overflow,
        isolation=mode,
        detail=detail,
    )
    return result, bytes(side_cap.data)


async def _settle(aw: Awaitable[Any], timeout: float) -> bool:
    """Wait up to ``timeout`` for ``aw`` without cancelling it; whether it finished."""
    try:
        await asyncio.wait_for(asyncio.shield(aw), timeout)
        return True
    except TimeoutError:
        return False


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, also when a loop is already running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
