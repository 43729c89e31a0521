"""Fixtures for the task loader tests: the shared reference data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[2]


def find_data_dir() -> Path | None:
    """``$LBT_DATA_DIR``, else ``<repo>/../shared/data``; None when neither exists."""
    for candidate in (os.environ.get("LBT_DATA_DIR"), _REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "math" / "math500.jsonl").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = find_data_dir()
    if found is None:
        pytest.skip("reference data not found: set LBT_DATA_DIR or put it at <repo>/../shared/data")
    return found
