from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.tpjobs import _postgres


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for this test session (started on first use)."""
    reason = _postgres.available()
    if reason:
        pytest.skip(reason)
    with _postgres.postgres_server() as url:
        yield url
