"""Run budgets: at most ``budget.max_requests`` requests and ``budget.max_tokens`` tokens, over all resumes.

A :class:`Budget` sits on the classroom's :class:`~lbt_agents.llm.CallLimits`, where every model
request passes.  A request is admitted (and counted) before it is sent; once the budget is spent the
next request waits until the admitted ones have finished (their replies land in the call cache and
their tasks in the checkpoints), then raises :class:`BudgetExhausted`, which stops the run.  What a
run spent is kept in ``<run>/usage.json``, so a resumed run counts it too.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from collections.abc import Awaitable, Callable
from typing import Any

from lbt_agents.errors import LbtError

USAGE_FILE = "usage.json"


class BudgetExhausted(LbtError):
    """The run reached its budget and stopped; finished work is saved (``--resume`` with a larger budget)."""

    exit_code = 5
    label = "stopped"


@dataclass
class Spent:
    """Requests and tokens a run has used, over all its resumes."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def load(cls, run_dir: Path) -> "Spent":
        path = run_dir / USAGE_FILE
        if not path.is_file():
            return cls()
        try:
            data = json.loads(path.read_text())
            return cls(**{k: int(data.get(k, 0)) for k in ("requests", "prompt_tokens", "completion_tokens")})
        except (ValueError, TypeError, AttributeError):
            return cls()  # a torn or hand-edited file: count from here rather than refuse to run

    @classmethod
    def load_all(cls, run_dir: Path) -> "Spent":
        """What a run and its sub-runs (folders with their own ``usage.json``: M3's repeats) have used."""
        total = cls.load(run_dir)
        for sub in sorted(run_dir.glob(f"*/{USAGE_FILE}")) if run_dir.is_dir() else ():
            total = total + cls.load(sub.parent)
        return total

    def __add__(self, other: "Spent") -> "Spent":
        return Spent(self.requests + other.requests, self.prompt_tokens + other.prompt_tokens,
                     self.completion_tokens + other.completion_tokens)

    def save(self, run_dir: Path) -> None:
        from lbt_agents.runs import write_atomic

        write_atomic(run_dir / USAGE_FILE, json.dumps({**asdict(self), "tokens": self.tokens}, indent=2))


class Budget:
    """Admits requests while ``max_requests`` / ``max_tokens`` allow (``None``: no cap)."""

    def __init__(self, max_requests: int | None = None, max_tokens: int | None = None,
                 spent: Spent | None = None) -> None:
        self.max_requests = max_requests
        self.max_tokens = max_tokens
        self.spent = spent if spent is not None else Spent()
        self.in_flight = 0
        self._idle: asyncio.Event | None = None

    def exhausted(self) -> bool:
        return (self.max_requests is not None and self.spent.requests >= self.max_requests) or (
            self.max_tokens is not None and self.spent.tokens >= self.max_tokens
        )

    async def admit(self) -> None:
        """Count one request about to be sent, or (budget spent) wait for the admitted ones and raise."""
        if not self.exhausted():
            self.spent.requests += 1
            self.in_flight += 1
            return
        if self.in_flight:
            if self._idle is None:
                self._idle = asyncio.Event()
            await self._idle.wait()
        raise BudgetExhausted(self.describe())

    async def spend(self, send: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """``await send(*args)`` (a request returning a :class:`~lbt_agents.llm.Reply`) within the budget."""
        await self.admit()
        try:
            reply = await send(*args)
        except BaseException:
            self.settle()
            raise
        self.settle(reply.prompt_tokens, reply.completion_tokens)
        return reply

    def settle(self, prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
        """An admitted request ended (replied or failed) with these tokens."""
        self.spent.prompt_tokens += prompt_tokens
        self.spent.completion_tokens += completion_tokens
        self.in_flight -= 1
        if self.in_flight == 0 and self._idle is not None:
            self._idle.set()
            self._idle = None

    def describe(self) -> str:
        """``"40 of 40 requests, 9120 tokens (no cap)"``."""
        cap = lambda v: "no cap" if v is None else f"of {v}"  # noqa: E731
        return (f"{self.spent.requests} requests ({cap(self.max_requests)}), "
                f"{self.spent.tokens} tokens ({cap(self.max_tokens)})")

    def as_dict(self) -> dict[str, Any]:
        return {"max_requests": self.max_requests, "max_tokens": self.max_tokens, **asdict(self.spent),
                "tokens": self.spent.tokens, "exhausted": self.exhausted()}


class UsageFile:
    """``<run>/usage.json`` for a budget: saved at most once a second while the run goes (:meth:`save_soon`)
    and when it ends (:meth:`save`)."""

    EVERY_S = 1.0

    def __init__(self, budget: Budget, run_dir: Path) -> None:
        self.budget, self.run_dir, self.saved_at = budget, run_dir, 0.0

    def save_soon(self) -> None:
        if time.monotonic() - self.saved_at >= self.EVERY_S:
            self.save()

    def save(self) -> None:
        self.budget.spent.save(self.run_dir)
        self.saved_at = time.monotonic()


def stop_message(run_id: str, budget: Budget) -> str:
    """The one line a run stopped at its budget ends with (what was used, how to go on)."""
    by_requests = budget.max_requests is not None and budget.spent.requests >= budget.max_requests
    cap = "max_requests" if by_requests else "max_tokens"
    return (f"run {run_id!r} stopped at its budget: {budget.describe()}; finished work is saved, continue it with "
            f"--resume {run_id} --set budget.{cap}=<larger>")


def write_stop_summary(run_dir: Path, graph: str | None, budget: Budget, usage: dict[str, Any],
                       finished: dict[str, int], wall_s: float) -> None:
    """``summary.json`` / ``summary.md`` of a run stopped at its budget (the finished run's replace them)."""
    from lbt_agents.runs import write_atomic

    summary = {"run_id": run_dir.name, "graph": graph, "stopped": "budget", "budget": budget.as_dict(),
               "finished_in_last_step": finished, "wall_s": round(wall_s, 1), "usage": usage}
    write_atomic(run_dir / "summary.json", json.dumps(summary, indent=2))
    lines = [f"# Run `{run_dir.name}` stopped at its budget", "", f"Used {budget.describe()} (over all its sessions).",
             "", f"Continue it with `--resume {run_dir.name}` and a larger budget (`--set budget.max_requests=...`)."]
    write_atomic(run_dir / "summary.md", "\n".join(lines) + "\n")
