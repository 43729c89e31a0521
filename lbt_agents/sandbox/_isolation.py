"""Which isolation layers work on this machine, and the bubblewrap command line."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lbt_agents.sandbox._types import Isolation, IsolationChoice, IsolationError

SANDBOX_ROOT = "/sandbox"
"""The program's working directory inside bubblewrap (also mounted on /tmp)."""
LAUNCHER_IN_SANDBOX = "/.lbt/launcher.py"
LAUNCHER = Path(__file__).with_name("_launcher.py")

_SYSTEM_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/alternatives")


@dataclass(frozen=True)
class Capabilities:
    """What this machine offers the sandbox (probed once per process)."""

    bwrap: str | None
    """Path of a working bubblewrap, None when missing or unusable."""
    root: bool
    detail: str

    @property
    def best(self) -> Isolation:
        return "bwrap" if self.bwrap else "bare"


def is_root() -> bool:
    return os.geteuid() == 0


def python_roots(python: str) -> list[str]:
    """Folders the interpreter needs (its prefix and base prefix), outside /usr."""
    roots = {str(Path(os.path.realpath(python)).parent.parent), str(Path(os.path.abspath(python)).parent.parent)}
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        roots |= {sys.prefix, sys.base_prefix}
    keep = [r for r in sorted(roots) if r not in ("/", "/usr") and not r.startswith("/usr/") and os.path.isdir(r)]
    return [r for r in keep if not any(r != o and r.startswith(o + "/") for o in keep)]


def bwrap_prefix(bwrap: str, workdir: str, python: str, launcher: str | None) -> list[str]:
    """The bubblewrap command that puts ``workdir`` at /sandbox (and /tmp), read-only elsewhere."""
    cmd = [bwrap, "--die-with-parent", "--new-session", "--as-pid-1", "--unshare-ipc", "--unshare-pid", "--unshare-net",
           "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]  # fmt: skip
    if is_root():
        # No user namespace: the launcher keeps CAP_SETUID/SETGID only to drop to a fresh uid.
        cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        cmd += ["--unshare-user"]
    cmd += ["--ro-bind", "/usr", "/usr"]
    for name in _SYSTEM_DIRS:
        path = Path("/" + name)
        if path.is_symlink():
            cmd += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            cmd += ["--ro-bind", str(path), str(path)]
    for path in _ETC_FILES:
        cmd += ["--ro-bind-try", path, path]
    # The fresh folder first, so an interpreter that lives under /tmp is mounted over it, not hidden by it.
    cmd += ["--bind", workdir, SANDBOX_ROOT, "--bind", workdir, "/tmp", "--proc", "/proc", "--dev", "/dev"]
    made: set[str] = set()
    for root in python_roots(python):
        for parent in reversed(Path(root).parents[:-1]):  # bwrap would create them 0700
            if str(parent) not in made:
                made.add(str(parent))
                cmd += ["--perms", "0755", "--dir", str(parent)]
        cmd += ["--ro-bind", root, root]
    if launcher is not None:
        cmd += ["--ro-bind", launcher, LAUNCHER_IN_SANDBOX]
    cmd += ["--chdir", SANDBOX_ROOT, "--remount-ro", "/"]
    return cmd


@functools.cache
def capabilities() -> Capabilities:
    """Probe bubblewrap once: it must start a Python in a fresh net+pid namespace."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Capabilities(None, is_root(), "bubblewrap not installed (apt-get install -y bubblewrap)")
    probe = Path(os.environ.get("TMPDIR", "/tmp"))
    cmd = [*bwrap_prefix(bwrap, str(probe), sys.executable, None), sys.executable, "-I", "-S", "-c", "pass"]
    try:
        done = subprocess.run(cmd, check=False, capture_output=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Capabilities(None, is_root(), f"bubblewrap failed to start: {exc}")
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        return Capabilities(None, is_root(), f"bubblewrap cannot create namespaces here: {why[0]}")
    return Capabilities(bwrap, is_root(), "bubblewrap works: net, pid, ipc, uts and mount namespaces")


def choose(isolation: IsolationChoice, require_isolation: bool) -> Isolation:
    """The isolation layer a run uses; refuses when isolation is required but missing."""
    caps = capabilities()
    if isolation == "bare":
        if require_isolation:
            raise IsolationError("isolation is required but isolation='bare' was asked for")
        return "bare"
    if caps.bwrap is None:
        if isolation == "bwrap" or require_isolation:
            raise IsolationError(f"network/filesystem isolation unavailable: {caps.detail}")
        return "bare"
    return "bwrap"
