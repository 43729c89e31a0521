"""Records of the sandbox: its limits, a run's result, and its one error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lbt_agents.errors import LbtError

Status = Literal["ok", "error", "timeout", "memory", "killed", "output_limit"]
"""ok: exit 0; error: non-zero exit; timeout: wall or CPU time ran out; memory: the
memory limit was hit; killed: died of another signal (or its launcher died);
output_limit: wrote more than ``max_output_bytes`` and was stopped."""

Isolation = Literal["bwrap", "bare"]
"""bwrap: bubblewrap namespaces (net, pid, ipc, uts, mount) plus rlimits; bare: rlimits,
a subreaper and process-group kills only (no network or filesystem isolation)."""

IsolationChoice = Literal["auto", "bwrap", "bare"]
"""auto: the process default (``$LBT_SANDBOX_ISOLATION``, else bwrap); bwrap: bubblewrap or an
:class:`IsolationError`; bare: unconfined, an explicit choice (warned about once per process)."""


class IsolationError(LbtError):
    """The sandbox cannot give the isolation that was asked for (e.g. bubblewrap is missing)."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed run."""

    wall_s: float = 10.0
    """Wall-clock seconds before the whole sandbox is killed."""
    cpu_s: float | None = None
    """CPU seconds (RLIMIT_CPU); None: same as ``wall_s``."""
    memory_mb: int = 512
    """Address space per process, MiB (RLIMIT_AS)."""
    max_processes: int = 16
    """Processes (and threads) the program may have at once, itself included."""
    max_output_bytes: int = 64_000
    """Bytes kept of stdout and of stderr each; more stops the run (status output_limit)."""
    max_file_mb: int = 16
    """Largest file the program may write, MiB (RLIMIT_FSIZE)."""
    max_open_files: int = 64
    """Open file descriptors (RLIMIT_NOFILE)."""

    @property
    def cpu_limit_s(self) -> int:
        return max(1, round(self.cpu_s if self.cpu_s is not None else self.wall_s))


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class RunResult:
    """What one sandboxed run did."""

    status: Status
    exit_code: int | None
    """The program's exit code; negative: killed by that signal; None: unknown."""
    stdout: str
    """The first ``max_output_bytes`` of stdout (decoded, invalid bytes replaced)."""
    stderr: str
    """The first ``max_output_bytes`` of stderr."""
    wall_s: float
    max_rss_mb: float | None
    """Peak resident memory of the program (and its waited-for children), MiB."""
    cpu_s: float | None = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    isolation: Isolation = "bare"
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self, excerpt: int = 2000) -> dict[str, object]:
        """A JSON-friendly summary with stdout/stderr cut to ``excerpt`` characters."""
        return {
            "status": self.status,
            "exit_code": self.exit_code,
            "stdout": self.stdout[:excerpt],
            "stderr": self.stderr[-excerpt:],
            "stdout_truncated": self.stdout_truncated or len(self.stdout) > excerpt,
            "stderr_truncated": self.stderr_truncated or len(self.stderr) > excerpt,
            "wall_s": round(self.wall_s, 3),
            "cpu_s": None if self.cpu_s is None else round(self.cpu_s, 3),
            "max_rss_mb": None if self.max_rss_mb is None else round(self.max_rss_mb, 1),
            "isolation": self.isolation,
            "detail": self.detail,
        }
