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
from pathlib import Path

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


# --- reference data (../shared/data in a development checkout, or pulled with `lbt data pull`) -----------------

_REPO = Path(__file__).resolve().parents[1]


def find_reference_data(*names: str) -> Path | None:
    """The first of ``$LBT_DATA_DIR``, ``<repo>/../shared/data`` and the pulled-data cache that holds the
    data sets ``names`` (and the sets they require; all sets when none are named), else None."""
    from lbt_agents.tasks import DATASETS, data_cache_dir, dataset_present, get_dataset

    specs = [get_dataset(n) for n in (names or DATASETS)]
    specs += [get_dataset(r) for s in specs for r in s.requires]
    env = os.environ.get("LBT_DATA_DIR")
    for folder in (Path(env) if env else None, _REPO.parent / "shared" / "data", data_cache_dir()):
        if folder is not None and all(dataset_present(s, folder) for s in specs):
            return folder
    return None


def reference_data_reason(*names: str) -> str:
    return f"reference data not found: set LBT_DATA_DIR or run `lbt data pull {' '.join(names) or 'all'}`"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs_reference_data(*names): reads reference data sets (see `lbt data list`); skipped when they are absent",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    found: dict[tuple[str, ...], Path | None] = {}
    for item in items:
        marker = item.get_closest_marker("needs_reference_data")
        if marker is None:
            continue
        names = tuple(marker.args)
        if names not in found:
            found[names] = find_reference_data(*names)
        if found[names] is None:
            item.add_marker(pytest.mark.skip(reason=reference_data_reason(*names)))


@pytest.fixture
def reference_data_dir(request: pytest.FixtureRequest) -> Path:
    """The folder that holds the reference data sets named by the test's ``needs_reference_data`` marker
    (all sets when unmarked); skips with the reason and the fix when absent."""
    marker = request.node.get_closest_marker("needs_reference_data")
    names = marker.args if marker is not None else ()
    found = find_reference_data(*names)
    if found is None:
        pytest.skip(reference_data_reason(*names))
    return found
