"""Bounded grading: a numeric bomb is graded wrong within the bound, with the reason, off the event loop;
workers that overrun are replaced, and no worker outlives its parent."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from lbt_agents.errors import ConfigError
from lbt_agents.grading import get_grader
from lbt_agents.grading import math as math_grading
from lbt_agents.grading._bounded import SymbolicPool, shared_pool
from lbt_agents.grading.math import MathGrader, grade_timeout_s
from lbt_agents.types import Problem
from tests.grading._helpers import gone

SLACK_S = 0.6
BOMBS = ["10^{10^{10}}", "(10^{10})!", "3^{3^{3^{3}}}", "e^{e^{e^{e^{e}}}}", "\\Gamma(10^{10})"]


def _p(answer: str) -> Problem:
    return Problem(id="t", question="q", answer=answer, kind="math")


@pytest.mark.parametrize("bomb", BOMBS)
def test_a_bomb_is_graded_wrong_within_the_bound(bomb):
    grader = MathGrader(timeout_s=0.5)
    shared_pool().start()
    start = time.perf_counter()
    verdict = asyncio.run(grader.grade(_p("5"), f"so\n[[Final Answer]]: {bomb}"))
    assert time.perf_counter() - start <= 0.5 + SLACK_S
    assert verdict["answer"] == bomb and not verdict["correct"] and verdict["score"] == 0.0
    assert verdict["detail"] == "grading timed out after 0.5 s"
    start = time.perf_counter()
    assert not grader.equivalent(bomb, "7")
    assert time.perf_counter() - start <= 0.5 + SLACK_S


def test_the_event_loop_keeps_running_while_a_bomb_is_graded(monkeypatch):
    monkeypatch.delenv("LBT_GRADE_TIMEOUT_S", raising=False)
    grader = get_grader("math")
    assert grader.timeout_s == 2.0
    shared_pool().start()

    async def main() -> tuple[dict, float, int, float]:
        ticks: list[float] = []
        done = asyncio.Event()

        async def heartbeat() -> None:
            while not done.is_set():
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.01)

        beat = asyncio.create_task(heartbeat())
        start = time.perf_counter()
        verdict = await grader.grade(_p("5"), "[[Final Answer]]: 9^{9^{9^{9}}}")
        took = time.perf_counter() - start
        done.set()
        await beat
        gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
        return verdict, took, len(ticks), max(gaps)

    verdict, took, ticks, worst_gap = asyncio.run(main())
    assert verdict["detail"] == "grading timed out after 2.0 s" and not verdict["correct"]
    assert 1.0 <= took <= 2.0 + SLACK_S
    assert ticks >= 50 and worst_gap < 0.25, (ticks, worst_gap)


def test_fast_paths_need_no_worker(monkeypatch):
    def no_pool():
        raise AssertionError("a fast path asked for a grading worker")

    monkeypatch.setattr(math_grading, "shared_pool", no_pool)
    grader = MathGrader()
    for gold, reply, correct in [
        ("5", "[[Final Answer]]: 5", True),
        ("5", "[[Final Answer]]: 6", False),
        ("1,000", "\\boxed{1000}", True),
        ("x=3", "The answer is 4", False),
        ("B", "[[Final Answer]]: (C)", False),
        ("\\frac{1}{2}", "[[Final Answer]]: \\dfrac12", True),
        ("5", "no answer at all", False),
    ]:
        assert asyncio.run(grader.grade(_p(gold), reply))["correct"] is correct
    assert grader.equivalent("007", "7") and not grader.equivalent("-3", "3")


def test_the_bound_is_configurable(monkeypatch):
    monkeypatch.setenv("LBT_GRADE_TIMEOUT_S", "0.75")
    assert MathGrader().timeout_s == 0.75 == grade_timeout_s()
    assert MathGrader(timeout_s=3).timeout_s == 3.0
    for bad in ("soon", "0", "-1", "nan"):
        monkeypatch.setenv("LBT_GRADE_TIMEOUT_S", bad)
        with pytest.raises(ConfigError, match="LBT_GRADE_TIMEOUT_S"):
            MathGrader()
    with pytest.raises(ConfigError, match="timeout_s"):
        MathGrader(timeout_s=0)
    monkeypatch.delenv("LBT_GRADE_TIMEOUT_S")
    grader = get_grader("math")
    assert grader.timeout_s == 2.0
    grader.timeout_s = 0.25  # how a config value reaches a grader the examiner already holds
    assert grader.timeout_s == 0.25
    with pytest.raises(ConfigError, match="timeout_s"):
        grader.timeout_s = -2


def test_a_worker_that_overruns_is_killed_and_replaced():
    pool = SymbolicPool(1)
    try:
        pool.start()
        (frozen,) = pool.worker_pids()
        os.kill(frozen, signal.SIGSTOP)  # it can no longer answer, not even to its own timer
        start = time.perf_counter()
        result = pool.submit("x+1", "1+x", 0.5).result()
        assert result.timed_out and not result.equal
        assert time.perf_counter() - start <= 0.5 + SLACK_S
        assert gone(frozen)
        assert pool.submit("\\frac{1}{2}", "0.5", 5.0).result().equal
        (fresh,) = pool.worker_pids()
        assert fresh != frozen
        os.kill(fresh, signal.SIGKILL)  # a worker that died between checks is replaced too
        assert gone(fresh)
        assert pool.submit("2\\sqrt{3}", "\\sqrt{12}", 5.0).result().equal
        assert pool.worker_pids() and pool.worker_pids()[0] != fresh
    finally:
        pids = pool.worker_pids()
        pool.close()
    assert all(gone(pid) for pid in pids)
    assert pool.submit("1", "1", 1.0).result().error == "grading workers are shut down"


_CHILD = textwrap.dedent(
    """
    import asyncio, signal, sys
    # Ctrl-C reaches a process as in a terminal, even when the tests run as a shell's background job
    # (`cmd &` starts it with SIGINT ignored, and every child inherits that)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from lbt_agents.grading import get_grader
    from lbt_agents.grading._bounded import shared_pool

    shared_pool().start()
    print(*shared_pool().worker_pids(), flush=True)
    problem = {"id": "t", "question": "q", "answer": "5", "kind": "math"}

    async def grade():
        print("grading", flush=True)  # the event loop runs: a signal now lands in the grade
        return await get_grader("math").grade(problem, "[[Final Answer]]: " + sys.argv[1])

    verdict = asyncio.run(grade())
    print(verdict["detail"], flush=True)
    """
)


def _child(bomb: str, timeout_s: str) -> subprocess.Popen:
    env = {**os.environ, "LBT_GRADE_TIMEOUT_S": timeout_s}
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, bomb], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _worker_pids(child: subprocess.Popen) -> list[int]:
    line = child.stdout.readline()  # type: ignore[union-attr]
    pids = [int(p) for p in line.split()]
    assert pids, f"no workers started: {line!r} {child.stderr.read() if child.poll() is not None else ''}"  # type: ignore[union-attr]
    return pids


def test_workers_end_with_their_process():
    child = _child("10^{10^{10}}", "0.5")
    pids = _worker_pids(child)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert out.split() and out.strip().splitlines()[-1] == "grading timed out after 0.5 s"
    assert all(gone(pid) for pid in pids)


def test_ctrl_c_interrupts_a_grade_in_progress():
    child = _child("10^{10^{10}}", "120")
    pids = _worker_pids(child)
    assert child.stdout.readline().strip() == "grading"  # type: ignore[union-attr]
    time.sleep(0.5)  # the grade is now in progress in a worker
    child.send_signal(signal.SIGINT)
    start = time.perf_counter()
    _, err = child.communicate(timeout=30)
    assert time.perf_counter() - start < 5
    assert child.returncode != 0 and "KeyboardInterrupt" in err
    assert all(gone(pid) for pid in pids)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_workers_die_when_their_process_is_killed():
    child = _child("10^{10^{10}}", "120")
    pids = _worker_pids(child)
    time.sleep(0.5)
    child.kill()
    child.communicate(timeout=30)
    assert all(gone(pid) for pid in pids)


def test_a_worker_that_cannot_start_fails_the_check_with_its_reason(tmp_path, monkeypatch):
    from lbt_agents.grading import _bounded

    script = tmp_path / "broken_worker.py"
    script.write_text('print(\'{"ready": false, "error": "ImportError: no module named math_verify"}\', flush=True)\n')
    monkeypatch.setattr(_bounded, "_WORKER_SCRIPT", script)
    pool = SymbolicPool(1)
    monkeypatch.setattr(math_grading, "shared_pool", lambda: pool)
    monkeypatch.setattr(math_grading, "_MEMORY", math_grading._Memory())  # earlier tests' results do not count
    try:
        verdict = asyncio.run(MathGrader().grade(_p("\\frac{1}{2}"), "[[Final Answer]]: 0.5"))
        assert not verdict["correct"]
        assert verdict["detail"] == (
            "symbolic check failed: grading worker cannot run math-verify: ImportError: no module named math_verify"
        )
        start = time.perf_counter()  # no new start is tried for a while: the next check fails at once
        assert "cannot run math-verify" in (pool.submit("\\sqrt{4}", "2", 1.0).result().error or "")
        assert time.perf_counter() - start < 0.5
        script.write_text("import sys; sys.exit(3)\n")
        monkeypatch.setattr(_bounded, "_RETRY_START_AFTER_S", 0.0)
        assert pool.submit("\\sqrt{4}", "2", 1.0).result().error == "grading worker exited (code 3)"
        assert pool.worker_pids() == []
    finally:
        pool.close()


def test_the_same_bomb_costs_one_bound():
    grader = MathGrader(timeout_s=0.5)
    grader.warm_up()

    async def main() -> list[dict]:
        bomb = "[[Final Answer]]: 8^{8^{8^{8}}}"
        same = [grader.grade(_p("5"), bomb) for _ in range(8)]  # in flight together: one check
        return await asyncio.gather(*same)

    start = time.perf_counter()
    verdicts = asyncio.run(main())
    assert time.perf_counter() - start <= 0.5 + SLACK_S
    assert {v["detail"] for v in verdicts} == {"grading timed out after 0.5 s"}
    start = time.perf_counter()  # against another gold: the bomb is known to be slow
    assert asyncio.run(grader.grade(_p("7"), "\\boxed{8^{8^{8^{8}}}}"))["detail"] == "grading timed out after 0.5 s"
    assert not grader.equivalent("8^{8^{8^{8}}}", "6")
    assert time.perf_counter() - start < 0.2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_grades_with_its_own_workers():
    grader = MathGrader(timeout_s=5.0)
    grader.warm_up()
    parents = set(shared_pool().worker_pids())
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: must not use (or kill) the parent's workers
        ok = grader.equivalent("\\frac{1}{3}", "2/6") and not set(shared_pool().worker_pids()) & parents
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    assert set(shared_pool().worker_pids()) == parents and grader.equivalent("\\frac{1}{4}", "0.25")
