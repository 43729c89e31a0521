"""Every test stops the adapters' background event loop it started."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from lbt_agents.integrations._loop import shutdown


@pytest.fixture(autouse=True)
def stop_adapter_loop() -> Iterator[None]:
    yield
    shutdown()
    assert not [t for t in threading.enumerate() if t.name == "lbt-integrations-loop"]
