"""Grading tests leave no grading worker behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.grading._helpers import gone


@pytest.fixture(scope="session", autouse=True)
def _no_grading_workers_left() -> Iterator[None]:
    yield
    from lbt_agents.grading import _bounded

    pool = _bounded._SHARED
    pids = pool.worker_pids() if pool is not None else []
    _bounded.shutdown_shared_pool()
    assert all(gone(pid) for pid in pids), f"grading workers left running: {pids}"
