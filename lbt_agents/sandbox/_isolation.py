"""Which isolation layers work on this machine, and the bubblewrap command line."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from lbt_agents.sandbox._types import Isolation, IsolationChoice, IsolationError

ENV_VAR = "LBT_SANDBOX_ISOLATION"
"""Process-wide default isolation (``bwrap`` or ``bare``) when no explicit choice is given."""
UNCONFINED_HINT = "or run unconfined with sandbox.isolation: bare / --allow-unsandboxed / LBT_SANDBOX_ISOLATION=bare"

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
    installed: str | None = None
    """Path of the ``bwrap`` found on PATH, working or not."""

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
        return Capabilities(None, is_root(), "bubblewrap is not installed")
    probe = Path(os.environ.get("TMPDIR", "/tmp"))
    cmd = [*bwrap_prefix(bwrap, str(probe), sys.executable, None), sys.executable, "-I", "-S", "-c", "pass"]
    try:
        done = subprocess.run(cmd, check=False, capture_output=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Capabilities(None, is_root(), f"bubblewrap failed to start: {exc}", bwrap)
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        return Capabilities(None, is_root(), f"bubblewrap cannot create namespaces here: {why[0][:200]}", bwrap)
    return Capabilities(bwrap, is_root(), "bubblewrap works: net, pid, ipc, uts and mount namespaces", bwrap)


# -- which isolation a run gets ---------------------------------------------------------------------------

_default: Isolation | None = None
_used: set[Isolation] = set()
_warned = False
_lock = threading.Lock()


def _valid(choice: object, where: str) -> IsolationChoice:
    if choice not in get_args(IsolationChoice):
        raise IsolationError(f"{where}: sandbox isolation {choice!r} is not one of auto, bwrap, bare")
    return choice  # type: ignore[return-value]


def set_default_isolation(choice: IsolationChoice | None) -> None:
    """Set the process-wide isolation used when a run asks for ``auto`` (None/``auto``: back to the default).

    The default is ``$LBT_SANDBOX_ISOLATION``, else ``bwrap``; a run config's ``sandbox.isolation`` sets it.
    """
    global _default
    choice = None if choice is None else _valid(choice, "set_default_isolation")
    _default = None if choice in (None, "auto") else choice  # type: ignore[assignment]


def default_isolation() -> Isolation:
    """What ``auto`` means now: :func:`set_default_isolation`, else ``$LBT_SANDBOX_ISOLATION``, else ``bwrap``."""
    if _default is not None:
        return _default
    env = os.environ.get(ENV_VAR, "").strip().lower()
    if env in ("", "auto"):
        return "bwrap"
    return _valid(env, ENV_VAR)  # type: ignore[return-value]


def missing_bwrap_message(caps: Capabilities) -> str:
    """The one line that says why bubblewrap cannot isolate a run here, and the fix."""
    if caps.installed is None:
        sudo = "" if caps.root else "sudo "
        return f"the code sandbox needs bubblewrap: {sudo}apt-get install bubblewrap ({UNCONFINED_HINT})"
    return (
        f"the code sandbox needs a working bubblewrap, but {caps.installed} fails its probe: {caps.detail} "
        f"(see 'Installing bubblewrap' in docs/sandbox.md, {UNCONFINED_HINT})"
    )


def resolve_isolation(choice: IsolationChoice | None = None, *, require_isolation: bool = False) -> Isolation:
    """The isolation a run with ``choice`` gets; raises :class:`IsolationError` (one line, with the fix).

    ``auto``/None: :func:`default_isolation`.  ``bwrap``: bubblewrap, which must pass its probe.
    ``bare``: unconfined (rlimits only): warns once per process on stderr.  Model-written code
    therefore never runs unconfined unless someone chose ``bare``.
    """
    choice = "auto" if choice is None else _valid(choice, "sandbox")
    mode: Isolation = default_isolation() if choice == "auto" else choice  # type: ignore[assignment]
    if mode == "bare":
        if require_isolation:
            raise IsolationError("isolation is required, but sandbox isolation 'bare' (unconfined) was chosen")
        _warn_unconfined()
        return "bare"
    caps = capabilities()
    if caps.bwrap is None:
        raise IsolationError(missing_bwrap_message(caps))
    return "bwrap"


def _warn_unconfined() -> None:
    global _warned
    with _lock:
        if _warned:
            return
        _warned = True
    sys.stderr.write(
        "warning: model-written code runs UNCONFINED (sandbox isolation 'bare'): it can use the network and "
        "read and write whatever this user can\n"
    )
    sys.stderr.flush()


def note_used(mode: Isolation) -> None:
    with _lock:
        _used.add(mode)


def isolation_used() -> tuple[Isolation, ...]:
    """The isolations that sandboxed runs of this process have used so far (sorted; empty before any run)."""
    with _lock:
        return tuple(sorted(_used))
