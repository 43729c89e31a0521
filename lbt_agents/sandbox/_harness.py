"""Test harness: runs INSIDE the sandbox, in the candidate's own process (stdlib only).

It reads ``spec.json`` (deleted at once), runs the prelude, the candidate (solution.py)
and the setup in one namespace, then each test in a copy of it, with a per-test alarm.
Each result is one line ``<nonce> <json>`` on the side-channel fd; lines without the
run's nonce are ignored by the host.
"""

import io
import json
import os
import signal
import sys


class _TestTimeout(BaseException):
    pass


def _alarm(signum, frame):
    raise _TestTimeout()


def main():
    with open("spec.json") as fh:
        spec = json.load(fh)
    os.remove("spec.json")
    side = os.fdopen(int(os.environ.pop("LBT_SIDE_FD")), "w", buffering=1)
    nonce = spec.pop("nonce")
    per_test = float(spec["per_test_s"])

    def emit(record):
        side.write(nonce + " " + json.dumps(record) + "\n")
        side.flush()

    def run(src, ns, filename):
        sink, real_out = io.StringIO(), sys.stdout
        sys.stdout = sink
        signal.setitimer(signal.ITIMER_REAL, per_test, 0.05)
        try:
            exec(compile(src, filename, "exec"), ns)  # noqa: S102 - running the candidate is the point
            return None
        except _TestTimeout:
            return f"timeout after {per_test:g}s"
        except BaseException as exc:  # noqa: BLE001 - every failure of untrusted code is a result
            return f"{type(exc).__name__}: {exc}"[:400]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            sys.stdout = real_out

    signal.signal(signal.SIGALRM, _alarm)
    with open("solution.py") as fh:
        code = fh.read()
    ns = {"__name__": "solution", "__builtins__": __builtins__}
    error = run(spec["prelude"], ns, "prelude.py")
    if error is None:
        error = run(code, ns, "solution.py")
        if error is not None:
            error = "solution: " + error
    else:
        error = "prelude: " + error
    if error is None:
        error = run(spec["setup"], ns, "setup.py")
        if error is not None:
            error = "setup: " + error
    emit({"load_error": error})
    for i, test in enumerate(spec["tests"]):
        failure = error if error is not None else run(test, dict(ns), f"test_{i}.py")
        emit({"i": i, "ok": failure is None, "error": failure})
    emit({"done": True})


if __name__ == "__main__":
    main()
