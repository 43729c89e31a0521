"""Progress of a running teaching graph (rich on a terminal, lines elsewhere)."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def m1_progress(cfg: Any, items: list[Any], *, enabled: bool = True, greedy: bool | None = None,
                per_sample: bool = False) -> "GraphProgress":
    """Progress for a graph that runs M1's exams over ``items`` with ``cfg`` (a RunConfig);
    ``per_sample``: the teacher's samples go one request each (chat models given with ``models=``)."""
    from lbt_agents.plan import m1_requests

    exams = cfg.m1.pairs_per_tp * len(items[0]["eps"]) * cfg.m1.reps_per_ep * len(cfg.classroom.students)
    return GraphProgress(total_tps=len(items), exams_per_tp=exams, enabled=enabled,
                         planned_requests=m1_requests(cfg, items, greedy=greedy, per_sample=per_sample))


def eta_seconds(done: int, total: int, elapsed_s: float, *, done_at_start: int = 0) -> float | None:
    """Seconds left at the pace so far: ``done - done_at_start`` units in ``elapsed_s``, ``total - done`` to go
    (None before the first unit)."""
    pace = done - done_at_start
    if pace <= 0 or elapsed_s <= 0:
        return None
    return max(total - done, 0) * elapsed_s / pace


def format_eta(seconds: float | None) -> str:
    """``"ETA 3m05s"``, ``"ETA 1h02m"``, or ``"ETA ?"`` when there is no pace yet."""
    if seconds is None:
        return "ETA ?"
    s = int(round(seconds))
    if s >= 3600:
        return f"ETA {s // 3600}h{s % 3600 // 60:02d}m"
    return f"ETA {s // 60}m{s % 60:02d}s" if s >= 60 else f"ETA {s}s"


class GraphProgress:
    """Counts ``teach`` and ``exam`` node updates from ``graph.astream(..., "updates")``; with
    ``planned_requests`` and :meth:`watch`, also the run's requests against the plan and an ETA."""

    def __init__(self, *, total_tps: int, exams_per_tp: int, enabled: bool = True,
                 planned_requests: int | None = None) -> None:
        self.enabled = enabled
        self.console = Console(stderr=True)
        self.live = enabled and self.console.is_terminal
        self.total_tps = total_tps
        self.total_exams = total_tps * exams_per_tp
        self.planned_requests = planned_requests
        self.taught = 0
        self.examined = 0
        self._budget: Any = None
        self._watched_at = 0.0
        self._requests_at_start = 0
        self._last_line = 0.0
        self._progress = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[eta]}"),
            console=self.console,
        )

    def watch(self, budget: Any) -> None:
        """Count requests from the run's :class:`~lbt_agents.budget.Budget` (it holds what earlier sessions spent)."""
        self._budget = budget
        self._watched_at = time.monotonic()
        self._requests_at_start = budget.spent.requests

    @property
    def requests(self) -> int:
        return self._budget.spent.requests if self._budget is not None else 0

    def eta(self) -> str:
        """The ETA from the pace of finished requests against the planned ones."""
        if self.planned_requests is None or self._budget is None:
            return ""
        return format_eta(eta_seconds(self.requests, self.planned_requests, time.monotonic() - self._watched_at,
                                      done_at_start=self._requests_at_start))

    def __enter__(self) -> "GraphProgress":
        if self.live:
            self._progress.start()
            self._teach = self._progress.add_task("teaching", total=self.total_tps, eta="")
            self._exam = self._progress.add_task("exams", total=self.total_exams, eta="")
            if self.planned_requests is not None:
                self._requests = self._progress.add_task("requests", total=self.planned_requests, eta="")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live:
            self._progress.stop()
        elif self.enabled:
            self._line(force=True)

    def update(self, updates: dict[str, Any]) -> None:
        taught = sum(node == "teach" for node in updates)
        self.advance(tps=taught, exams=sum(node == "exam" for node in updates))

    def advance(self, *, tps: int = 0, exams: int = 0) -> None:
        """Count ``tps`` taught TPs and ``exams`` exams (finished TPs of a resumed run, Ray jobs)."""
        self.taught += tps
        self.examined += exams
        if self.live:
            self._progress.update(self._teach, completed=self.taught)
            self._progress.update(self._exam, completed=self.examined)
            if self.planned_requests is not None:
                self._progress.update(self._requests, completed=self.requests, eta=self.eta())
        elif self.enabled:
            self._line()

    def _line(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_line > 10:
            self._last_line = now
            requests = f", requests {self.requests}/{self.planned_requests}, {self.eta()}" if self.eta() else ""
            print(
                f"progress: taught {self.taught}/{self.total_tps} TPs, exams {self.examined}/{self.total_exams}"
                f"{requests}",
                file=sys.stderr,
                flush=True,
            )
