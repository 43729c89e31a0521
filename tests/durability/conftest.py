"""The reference every crashed-and-resumed run must match: the same M1 run, uninterrupted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.durability import _harness as h
from tests.durability import _m1_child as child


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The results of the same run, uninterrupted (in this process)."""
    out = tmp_path_factory.mktemp("reference")
    scripts = child.Scripts(out / "requests.log")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("lbt_agents.tasks.load_task", lambda cfg: child.ITEMS)
        from lbt_agents.m1 import run_m1

        result = run_m1(child.run_config(out), models=scripts.models(), progress=False)
    assert len(h.events(out, "answered")) == child.EXAMS
    return json.loads(json.dumps(result.results, sort_keys=True))
