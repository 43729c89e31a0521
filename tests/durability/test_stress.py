"""Crash → resume, 20 times, with every CPU busy and the call cache off: kill -9 at a random point of the
exams, resume in a new process; no exam the checkpoint held is asked again, every other exam is asked
once, and the results are those of an uninterrupted run."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.durability import _harness as h
from tests.durability import _m1_child as child

ROUNDS = 20


@pytest.fixture
def busy_cpus() -> Iterator[int]:
    """A busy-loop process per CPU, for the length of the test."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        yield len(procs)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def crash_and_resume(out: Path, kill_after: int, reference: dict[str, Any]) -> dict[str, Any]:
    proc = h.start(out, "--delay-s", "0.005")
    try:
        reached = h.wait_until(lambda: len(h.events(out, "answered")) >= kill_after, 120, proc)
    finally:
        h.kill(proc)
    answered = set(h.events(out, "answered"))
    saved = h.saved_exam_keys(out)
    asked_before = len(h.events(out, "asked"))
    teacher_before = len(h.events(out, "asked", "teacher"))

    h.finish(h.start(out, "--resume"), timeout=300)
    asked_again = h.events(out, "asked")[asked_before:]
    everything = set(h.events(out, "answered"))
    problems = [
        msg for bad, msg in [
            (not reached, f"the run never answered {kill_after} exams"),
            (not saved <= answered, "the checkpoint holds exams no student answered"),
            (bool(saved & set(asked_again)), f"{len(saved & set(asked_again))} saved exams asked again"),
            (Counter(asked_again) != Counter(everything - saved), "the resume did not ask each unsaved exam once"),
            (len(everything) != child.EXAMS, f"{len(everything)} exams answered in all, not {child.EXAMS}"),
            (len(h.events(out, "asked", "teacher")) != teacher_before, "the teacher was asked again"),
            (h.results(out) != reference, "results differ from the uninterrupted run"),
        ] if bad
    ]
    return {"answered": len(answered), "saved": len(saved), "in_flight": len(answered - saved),
            "saved_asked_again": len(saved & set(asked_again)),
            "asked_again": len(asked_again), "problems": problems}


@pytest.mark.slow
def test_crash_resume_20_times_under_load(tmp_path: Path, reference: dict[str, Any], busy_cpus: int) -> None:
    rng = random.Random(16)
    rounds = [crash_and_resume(tmp_path / f"round{i}", rng.randint(1, child.EXAMS - 8), reference)
              for i in range(ROUNDS)]
    passed = sum(not r["problems"] for r in rounds)
    print(f"\ncrash/resume under load ({busy_cpus} busy CPUs, cache off): {passed}/{ROUNDS} passed; "
          f"finished exams re-sent: {sum(r['saved_asked_again'] for r in rounds)}; "
          f"answered but not yet saved at the kill (re-sent): {[r['in_flight'] for r in rounds]}")
    assert passed == ROUNDS, [r for r in rounds if r["problems"]]
