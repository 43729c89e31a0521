"""Runs INSIDE the sandbox, before the untrusted program (stdlib only, run with ``python -I -S``).

argv[1] is a JSON config.  The launcher sets the rlimits, drops privileges (when the
host is root), becomes a child subreaper, runs the program as its child, waits for it
with ``wait4`` (exit status, peak RSS, CPU time), kills whatever the program left behind
(double-forked daemons are reparented to this subreaper) and writes one JSON line to
its report fd, which the program never sees (close-on-exec, and this process is made
non-dumpable so /proc/<pid>/fd is closed to the program).
"""

import ctypes
import json
import os
import resource
import signal
import sys
import time

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36


def _children() -> list[int]:
    pids: list[int] = []
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children") as fh:
                pids.extend(int(p) for p in fh.read().split())
    except OSError:
        pass
    return pids


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _kill_descendants(sweep_uid: bool) -> None:
    """SIGKILL every descendant; orphans of killed children are reparented here, so repeat."""
    if sweep_uid:
        try:
            os.kill(-1, signal.SIGKILL)  # every process of this (unique) uid but this one
        except OSError:
            pass
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        kids = _children()
        if not kids:
            _reap()
            return
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.002)
        _reap()


def main() -> None:
    cfg = json.loads(sys.argv[1])
    report_fd = cfg["report_fd"]
    os.set_inheritable(report_fd, False)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    sweep_uid = cfg.get("uid") is not None

    def on_term(signum: int, frame: object) -> None:
        _kill_descendants(sweep_uid)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGUSR1, on_term)

    for name, soft, hard in cfg["rlimits"]:
        which = getattr(resource, name)
        _, cur_hard = resource.getrlimit(which)
        if cur_hard != resource.RLIM_INFINITY:  # never try to raise a hard limit
            hard = cur_hard if hard == resource.RLIM_INFINITY else min(hard, cur_hard)
            soft = hard if soft == resource.RLIM_INFINITY else min(soft, hard)
        resource.setrlimit(which, (soft, hard))
    if cfg.get("uid") is not None:
        os.setgroups([])
        os.setgid(cfg["uid"])
        os.setuid(cfg["uid"])
    libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # setuid cleared bwrap's --die-with-parent

    keep = set(cfg.get("pass_fds", []))
    argv, env = cfg["argv"], cfg["env"]
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGUSR1, signal.SIG_DFL)
            for fd in keep:
                os.set_inheritable(fd, True)
            for name in os.listdir("/proc/self/fd"):
                fd = int(name)
                if fd > 2 and fd not in keep:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            os.execve(argv[0], argv, env)
        except BaseException as exc:  # noqa: BLE001 - report, then exit 127
            os.write(2, f"sandbox launcher: cannot start {argv[0]}: {exc}\n".encode())
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    wall = time.monotonic() - start
    _kill_descendants(sweep_uid)
    report = {
        "exit_code": os.waitstatus_to_exitcode(status),
        "max_rss_kb": usage.ru_maxrss,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "wall_s": wall,
    }
    try:
        os.write(report_fd, (json.dumps(report) + "\n").encode())
    except OSError:
        pass
    code = report["exit_code"]
    os._exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
