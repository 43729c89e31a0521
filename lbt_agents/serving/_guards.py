"""Checks run before pulling or serving (a broken torchvision, too little memory, a busy port), and the
guards that make a server die with the process that started it."""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable

import psutil

from lbt_agents.errors import ServeError

_FIX = "run scripts/install.sh or `pip uninstall -y torchvision torchaudio torchcodec`"


@functools.cache
def check_torch_stack() -> None:
    """ServeError if a torchvision built for another torch is installed (it breaks ``transformers``)."""
    if importlib.util.find_spec("torchvision") is None:
        return
    proc = subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise ServeError(f"torchvision is installed but broken (built for another torch); {_FIX}")


def check_memory(need_bytes: int, what: str) -> None:
    """ServeError if less than ``need_bytes`` of RAM is available."""
    available = psutil.virtual_memory().available
    if available < need_bytes:
        raise ServeError(
            f"not enough memory to {what}: need ~{need_bytes / 2**30:.1f} GiB, available "
            f"{available / 2**30:.1f} GiB; lower --kv-cache-gib, serve fewer models or stop other servers"
        )


def check_port_free(port: int, host: str = "127.0.0.1") -> None:
    """ServeError if ``host:port`` cannot be bound (something listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise ServeError(f"port {port} on {host} is already in use; pick another port or stop what uses it") from None


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS reports free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel SIGKILL the child when this process's main thread dies.

    Linux only, and only when called from the main thread: the parent-death signal fires when the
    *thread* that forked the child ends, so a server started from a short-lived thread would die with
    it.  :func:`watch_parent` covers every other case.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def _set() -> None:
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return _set


_WATCHER = """
import os, signal, sys, time
parent, group = int(sys.argv[1]), int(sys.argv[2])
while True:
    if os.getppid() != parent:
        try:
            os.killpg(group, signal.SIGKILL)
        except OSError:
            pass
        break
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        break
    except PermissionError:
        pass
    time.sleep(0.2)
"""


def watch_parent(group: int) -> subprocess.Popen[bytes]:
    """A watcher process that SIGKILLs the process group ``group`` within a fraction of a second of this
    process ending, however it ends (kill -9 included), from whichever thread it was started; it exits
    by itself once the group is gone.  It runs in a session of its own, so Ctrl-C does not reach it."""
    return subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _WATCHER, str(os.getpid()), str(group)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
