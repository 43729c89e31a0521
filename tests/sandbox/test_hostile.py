"""Hostile programs: each must be contained, get the right verdict and leave the host alone."""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from pathlib import Path

import psutil
import pytest

from lbt_agents.sandbox import IsolationError, Limits, capabilities, run_python

REPO = Path(__file__).resolve().parents[2]
ISOLATED = capabilities().bwrap is not None
needs_bwrap = pytest.mark.skipif(
    not ISOLATED, reason=f"model-written code runs only isolated and bubblewrap does not work here: {capabilities().detail}"
)
FAST = Limits(wall_s=5.0, memory_mb=256, max_processes=8, max_output_bytes=10_000)


def _survivors(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(marker in part for part in proc.info["cmdline"] or ()):
            found.append(proc)
    return found


@needs_bwrap
def test_plain_program_ok() -> None:
    r = run_python("print(sum(range(10)))", limits=FAST)
    assert r.status == "ok" and r.exit_code == 0 and r.stdout == "45\n" and r.isolation == "bwrap"
    assert r.max_rss_mb is not None and 0 < r.max_rss_mb < 256


@needs_bwrap
def test_error_exit_and_stderr() -> None:
    r = run_python("raise ValueError('boom')", limits=FAST)
    assert r.status == "error" and r.exit_code == 1 and "ValueError: boom" in r.stderr


@needs_bwrap
def test_infinite_loop_times_out() -> None:
    start = time.monotonic()
    r = run_python("while True: pass", limits=Limits(wall_s=1.5, cpu_s=10))
    assert r.status == "timeout" and time.monotonic() - start < 5


@needs_bwrap
def test_cpu_limit_kills_busy_loop() -> None:
    r = run_python("while True: pass", limits=Limits(wall_s=10, cpu_s=1))
    assert r.status == "timeout" and "CPU" in r.detail and r.wall_s < 5


@needs_bwrap
def test_memory_bomb() -> None:
    r = run_python("x = []\nwhile True: x.append(bytearray(10**7))", limits=FAST)
    assert r.status == "memory", r
    assert psutil.virtual_memory().available > 512 * 2**20


@needs_bwrap
def test_fork_bomb_contained() -> None:
    marker = "forkbomb" + secrets.token_hex(4)
    code = f"""
import os, time
n = 0
for _ in range(200):
    try:
        if os.fork() == 0:
            time.sleep(30)  # {marker}
            os._exit(0)
        n += 1
    except OSError:
        break
print(n)
"""
    r = run_python(f"import sys; sys.argv[0] = {marker!r}\n" + code, limits=FAST)
    assert r.status == "ok", r
    assert int(r.stdout) < FAST.max_processes  # fork failed at the process limit
    assert r.wall_s < 5  # children were killed when the program ended, not awaited


@needs_bwrap
def test_double_forked_daemon_does_not_survive() -> None:
    marker = "lbtdaemon" + secrets.token_hex(4)
    code = f"""
import os, subprocess, sys
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(60)", {marker!r}])
    os._exit(0)
print("parent done")
"""
    r = run_python(code, limits=FAST)
    assert r.status == "ok" and "parent done" in r.stdout
    time.sleep(0.2)
    assert _survivors(marker) == []


@needs_bwrap
def test_unbounded_output_is_cut() -> None:
    r = run_python("while True: print('x' * 1000)", limits=FAST)
    assert r.status == "output_limit"
    assert r.stdout_truncated and len(r.stdout) == FAST.max_output_bytes


@needs_bwrap
def test_deep_recursion_contained() -> None:
    r = run_python("import sys\nsys.setrecursionlimit(10**7)\ndef f(n): return f(n + 1)\nf(0)", limits=Limits(wall_s=2))
    assert r.status in ("killed", "memory", "error", "timeout")  # contained, whichever limit hits first
    r2 = run_python("def f(n): return f(n + 1)\nf(0)", limits=FAST)
    assert r2.status == "error" and "RecursionError" in r2.stderr


@needs_bwrap
def test_parent_env_is_not_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = secrets.token_hex(8)
    monkeypatch.setenv("LBT_TEST_SECRET", secret)
    r = run_python("import os\nprint(dict(os.environ))\nprint(open('/proc/self/environ').read())", limits=FAST)
    assert r.status == "ok" and secret not in r.stdout and "LBT_TEST_SECRET" not in r.stdout


@needs_bwrap
def test_killing_its_parent_harms_nobody() -> None:
    code = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint('still here')"
    r = run_python(code, limits=FAST)
    assert r.status == "ok" and "still here" in r.stdout  # its parent is pid 1 of the namespace: immune
    assert psutil.Process().is_running()


@needs_bwrap
def test_writes_outside_workdir_fail() -> None:
    outside = Path("/tmp") / ("lbt-escape-" + secrets.token_hex(6))
    in_repo = REPO / ("lbt-escape-" + secrets.token_hex(6))
    code = f"""
import os
for path in ({str(outside)!r}, {str(in_repo)!r}, "/usr/lbt-escape"):
    try:
        open(path, "w").write("escaped")
        print("wrote", path)
    except OSError as exc:
        print("denied", type(exc).__name__)
open("inside.txt", "w").write("fine")
print(os.path.exists("inside.txt"))
"""
    r = run_python(code, limits=FAST)
    assert r.status == "ok"
    assert not outside.exists() and not in_repo.exists() and not Path("/usr/lbt-escape").exists()
    assert r.stdout.strip().endswith("True")
    assert "wrote /usr" not in r.stdout


@needs_bwrap
def test_no_network_to_local_listener() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    got: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                got.append(server.accept())
                return
            except TimeoutError:
                continue

    t = threading.Thread(target=accept)
    t.start()
    code = f"""
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=1).sendall(b"hello")
    print("connected")
except OSError as exc:
    print("refused", exc)
"""
    r = run_python(code, limits=FAST)
    time.sleep(0.3)  # a connection that got through would be accepted by now
    stop.set()
    t.join()
    server.close()
    assert r.status == "ok" and "refused" in r.stdout
    assert got == []


@needs_bwrap
def test_host_processes_invisible() -> None:
    r = run_python("import os\nprint(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))", limits=FAST)
    pids = eval(r.stdout)
    assert os.getpid() not in pids and len(pids) <= 4


def test_bare_mode_refused_when_isolation_required() -> None:
    with pytest.raises(IsolationError):
        run_python("print(1)", isolation="bare", require_isolation=True)


def test_bare_mode_still_limits_and_kills() -> None:
    marker = "lbtbare" + secrets.token_hex(4)
    code = f"""
import os, sys
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(60)", {marker!r}])
    os._exit(0)
while True: pass
"""
    r = run_python(code, limits=Limits(wall_s=1.0), isolation="bare")
    assert r.status == "timeout" and r.isolation == "bare"
    time.sleep(0.2)
    assert _survivors(marker) == []
