"""A worker process of the bounded math check (run by path by ``_bounded``; never imported).

It reads one JSON job a line on stdin (``{"gold", "pred", "soft_s"}``) and writes one JSON answer a
line (``{"equal": bool}`` or ``{"timeout": true}``). It stops its own work after ``soft_s`` (an
interval timer), and the parent kills it when it does not answer in time. It dies with its parent.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from functools import lru_cache


class _Overrun(BaseException):
    """Raised by the interval timer; a ``BaseException`` so ``except Exception`` in sympy lets it pass."""


def _overrun(signum: int, frame: object) -> None:
    raise _Overrun


def _die_with_parent(parent: int) -> None:
    try:  # Linux: the kernel kills us when the parent dies, even by kill -9
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(0)

    def watch() -> None:  # elsewhere (and as a backstop): notice being orphaned
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def _limit_memory(limit: int = 4 * 2**30) -> None:
    """A bomb fails with ``MemoryError`` rather than taking the machine's memory (where supported)."""
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard == resource.RLIM_INFINITY or hard > limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass


def main() -> None:
    _die_with_parent(int(sys.argv[1]))
    _limit_memory()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints must not corrupt the answers

    def send(message: dict) -> None:
        out.write(json.dumps(message) + "\n")

    try:
        import logging
        import warnings

        logging.disable(logging.CRITICAL)
        warnings.simplefilter("ignore")
        import math_verify.grader
        import math_verify.parser
        from math_verify import parse, verify

        math_verify.parser.TIMEOUT_WARNING_SHOWN = True
        math_verify.grader.TIMEOUT_WARNING_SHOWN = True
        verify(parse("$1$", parsing_timeout=None), parse("$1$", parsing_timeout=None), timeout_seconds=None)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which records it in the verdicts
        send({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return
    send({"ready": True, "pid": os.getpid()})

    @lru_cache(maxsize=4096)
    def parsed(text: str) -> tuple:
        return tuple(parse(f"${text}$", parsing_timeout=None))

    signal.signal(signal.SIGALRM, _overrun)
    for line in sys.stdin:
        job = json.loads(line)
        try:
            signal.setitimer(signal.ITIMER_REAL, max(0.001, float(job["soft_s"])))
            try:
                gold, pred = parsed(job["gold"]), parsed(job["pred"])
                equal = bool(gold and pred and verify(list(gold), list(pred), timeout_seconds=None))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            answer: dict = {"equal": equal}
        except _Overrun:
            answer = {"timeout": True}
        except Exception:  # noqa: BLE001 - an answer that breaks sympy is not equivalent
            answer = {"equal": False}
        send(answer)


if __name__ == "__main__":
    main()
