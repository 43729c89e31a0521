"""Progress of a running teaching graph (rich on a terminal, lines elsewhere)."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def m1_progress(cfg: Any, items: list[Any], *, enabled: bool = True) -> "GraphProgress":
    """Progress for a graph that runs M1's exams over ``items`` with ``cfg`` (a RunConfig)."""
    exams = cfg.m1.pairs_per_tp * len(items[0]["eps"]) * cfg.m1.reps_per_ep * len(cfg.classroom.students)
    return GraphProgress(total_tps=len(items), exams_per_tp=exams, enabled=enabled)


class GraphProgress:
    """Counts ``teach`` and ``exam`` node updates from ``graph.astream(..., "updates")``."""

    def __init__(self, *, total_tps: int, exams_per_tp: int, enabled: bool = True) -> None:
        self.enabled = enabled
        self.console = Console(stderr=True)
        self.live = enabled and self.console.is_terminal
        self.total_tps = total_tps
        self.total_exams = total_tps * exams_per_tp
        self.taught = 0
        self.examined = 0
        self._last_line = 0.0
        self._progress = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
        )

    def __enter__(self) -> "GraphProgress":
        if self.live:
            self._progress.start()
            self._teach = self._progress.add_task("teaching", total=self.total_tps)
            self._exam = self._progress.add_task("exams", total=self.total_exams)
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
        elif self.enabled:
            self._line()

    def _line(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_line > 10:
            self._last_line = now
            print(
                f"progress: taught {self.taught}/{self.total_tps} TPs, exams {self.examined}/{self.total_exams}",
                file=sys.stderr,
                flush=True,
            )
