"""Helpers of the grading tests."""

from __future__ import annotations

import time

import psutil


def gone(pid: int, wait_s: float = 5.0) -> bool:
    """Whether ``pid`` has exited (a zombie waiting for its reaper counts) within ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
