"""A sandbox for model-written Python: every run in its own isolated, limited process tree.

Layers (see docs/sandbox.md): bubblewrap namespaces (no network, own pid namespace,
read-only system, a fresh writable folder), rlimits, a subreaper launcher that kills
leftovers, and a kill of the whole tree on timeout.  Without a working bubblewrap a run
raises :class:`IsolationError`, unless someone chose ``isolation="bare"`` (unconfined).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from lbt_agents.sandbox._isolation import (
    ENV_VAR,
    Capabilities,
    capabilities,
    default_isolation,
    isolation_used,
    resolve_isolation,
    set_default_isolation,
)
from lbt_agents.sandbox._run import default_concurrency, execute, run_sync
from lbt_agents.sandbox._types import (
    DEFAULT_LIMITS,
    Isolation,
    IsolationChoice,
    IsolationError,
    Limits,
    RunResult,
    Status,
)
from lbt_agents.sandbox.testing import (
    TestCase,
    TestOutcome,
    TestReport,
    arun_tests,
    run_tests,
)

__all__ = [
    "ENV_VAR",
    "Capabilities",
    "Isolation",
    "IsolationChoice",
    "IsolationError",
    "Limits",
    "RunResult",
    "Status",
    "TestCase",
    "TestOutcome",
    "TestReport",
    "arun_many",
    "arun_python",
    "arun_tests",
    "capabilities",
    "default_isolation",
    "isolation_used",
    "resolve_isolation",
    "run_python",
    "run_tests",
    "set_default_isolation",
]


async def arun_python(
    code: str,
    *,
    stdin: str = "",
    limits: Limits = DEFAULT_LIMITS,
    isolation: IsolationChoice = "auto",
    require_isolation: bool = False,
    python: str | None = None,
) -> RunResult:
    """Run ``code`` as ``main.py`` in a fresh sandbox; never runs it outside one.

    Raises :class:`IsolationError` (see :func:`resolve_isolation`) when bubblewrap does not
    work here and nobody chose ``isolation='bare'``, or when ``require_isolation`` refuses bare.
    """
    result, _ = await execute(
        {"main.py": code},
        "main.py",
        stdin=stdin,
        limits=limits,
        isolation=isolation,
        require_isolation=require_isolation,
        python=python,
    )
    return result


def run_python(
    code: str,
    *,
    stdin: str = "",
    limits: Limits = DEFAULT_LIMITS,
    isolation: IsolationChoice = "auto",
    require_isolation: bool = False,
    python: str | None = None,
) -> RunResult:
    """Sync :func:`arun_python` (also safe to call while an event loop runs)."""
    return run_sync(
        arun_python(
            code, stdin=stdin, limits=limits, isolation=isolation, require_isolation=require_isolation, python=python
        )
    )


async def arun_many(
    programs: Sequence[str],
    *,
    stdin: str = "",
    limits: Limits = DEFAULT_LIMITS,
    concurrency: int | None = None,
    isolation: IsolationChoice = "auto",
    require_isolation: bool = False,
) -> list[RunResult]:
    """Run many programs, at most ``concurrency`` at once (default: the sandbox-wide limit)."""
    sem = asyncio.Semaphore(concurrency or default_concurrency())

    async def one(code: str) -> RunResult:
        async with sem:
            return await arun_python(
                code, stdin=stdin, limits=limits, isolation=isolation, require_isolation=require_isolation
            )

    return list(await asyncio.gather(*(one(p) for p in programs)))
