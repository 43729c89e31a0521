"""Checks run before pulling or serving: a broken torchvision, too little memory, a busy port."""

from __future__ import annotations

import functools
import importlib.util
import socket
import subprocess
import sys

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
