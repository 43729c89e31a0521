"""Shared fixtures for the whole suite.

``embedded_classroom`` (session scope) is a real vLLM classroom serving ``smollm2-135m``, started once for
all integration tests and stopped at the end of the session. Set ``LBT_TEST_BASE_URL`` to use a server
that is already running instead (nothing is started or stopped then). The model cache comes from
``LBT_CACHE_DIR`` or the default cache dir; the model is pulled if missing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

TEST_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class ExternalClassroom:
    """A running OpenAI-compatible server given by ``LBT_TEST_BASE_URL`` (serves every model name asked for)."""

    url: str

    def base_url(self, model: str) -> str:
        return self.url


@pytest.fixture(scope="session")
def embedded_classroom() -> Iterator[object]:
    """A ``Classroom`` serving ``smollm2-135m`` (or an ``ExternalClassroom`` for ``LBT_TEST_BASE_URL``)."""
    external = os.environ.get("LBT_TEST_BASE_URL")
    if external:
        yield ExternalClassroom(external.rstrip("/"))
        return
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed (pip install -e '.[serve]') and LBT_TEST_BASE_URL is not set")
    from lbt_agents.serving import serve_classroom

    import psutil

    tree: set[int] = set()
    with serve_classroom([TEST_MODEL], kv_cache_gib=2.0) as classroom:
        yield classroom
        for endpoint in classroom.endpoints.values():  # a test may have restarted or stopped a server
            with contextlib.suppress(psutil.NoSuchProcess):
                root = psutil.Process(endpoint.pid)
                tree |= {root.pid, *(c.pid for c in root.children(recursive=True))}
    left = [p for p in tree if _alive(p)]
    assert not left, f"the embedded classroom left processes behind: {left}"


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
